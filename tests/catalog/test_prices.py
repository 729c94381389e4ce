"""Properties of what an operator types into the product form: prices in yuan, names of any text."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from linli.catalog.schemas import MAX_STORE_PRICE_FEN, ProductCreate
from linli.core.admin_pages import Field
from linli.core.errors import BadRequest
from linli.core.money import format_fen, parse_yuan

fen_amounts = st.integers(min_value=-(10**15), max_value=10**15)


@given(fen_amounts)
def test_shown_price_reads_back_as_the_same_fen(amount: int) -> None:
    # What the edit form shows in the price box is what saving it again stores.
    shown = Field("store_price_fen", "catalog.field.store_price", kind="money").display(amount)
    assert parse_yuan(shown) == amount
    assert parse_yuan(format_fen(amount)) == amount


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=99))
def test_yuan_with_up_to_two_decimals_is_exact(yuan: int, fen: int) -> None:
    assert parse_yuan(f"{yuan}.{fen:02d}") == yuan * 100 + fen
    if fen % 10 == 0:
        assert parse_yuan(f"{yuan}.{fen // 10}") == yuan * 100 + fen


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=1, max_value=9))
def test_a_third_decimal_is_refused_never_rounded(yuan: int, thousandth: int) -> None:
    with pytest.raises(BadRequest):
        parse_yuan(f"{yuan}.00{thousandth}")


def attempt(**fields: object) -> tuple[ProductCreate | None, list[ErrorDetails]]:
    try:
        return ProductCreate.model_validate(fields), []
    except ValidationError as exc:
        return None, exc.errors()


def acceptable_name(name: str) -> bool:
    trimmed = name.strip()
    return 1 <= len(trimmed) <= 60 and not any(unicodedata.category(c) == "Cc" for c in trimmed)


@given(st.text(max_size=80), st.integers(min_value=-5, max_value=MAX_STORE_PRICE_FEN + 5))
def test_product_name_and_price_rules(name: str, price: int) -> None:
    product, errors = attempt(name=name, store_price_fen=price)
    problems = {str(e["loc"][0]) for e in errors}
    assert ("name" in problems) == (not acceptable_name(name))
    assert ("store_price_fen" in problems) == (not 0 <= price <= MAX_STORE_PRICE_FEN)
    if product is not None:
        assert product.name == name.strip()


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=30))
def test_description_keeps_line_breaks_but_not_other_controls(body: str) -> None:
    text = f"第一行\n{body}\n第三行"
    controls = {c for c in text.strip() if unicodedata.category(c) == "Cc"} - {"\n", "\r", "\t"}
    product, errors = attempt(name="青团", store_price_fen=3000, description=text)
    assert [e["type"] for e in errors] == (["control_characters"] if controls else [])
    if product is not None:
        assert product.description == text.strip()
