"""Community group orders (社区集单): progress per (session, community), threshold, cutoff, delivery promise;
fulfilment batches, pick lists and pickup codes."""

from __future__ import annotations
