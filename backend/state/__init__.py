"""Hot state that can always be rebuilt: last fix per device, last seen, dedupe marks.

`InMemoryState` for the embedded default, `RedisState` for production. Nothing is lost when
either is emptied: the database is the durable record. Supervision reads since when the store
holds its times (`StoredTimes.since`), so that an emptied store does not make every device look
silent.
"""
