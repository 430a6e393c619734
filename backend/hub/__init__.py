"""Console fan-out: events (alert raised/updated) to every WebSocket client of every API instance."""
