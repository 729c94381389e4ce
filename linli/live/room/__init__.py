"""The room's realtime channel: messages and frames, the event consumer that publishes them, each
process's fan-out to its viewers, and the WebSocket endpoint."""
