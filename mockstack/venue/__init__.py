"""A Binance-spot-compatible venue: the REST subset ccxt and Freqtrade use, real matching against
marketdata's seeded walk, balances, client-order-id idempotency and venue-side faults (PROTOCOL.md)."""
