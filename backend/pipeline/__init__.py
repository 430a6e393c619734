"""The ingest pipeline: one ordered list of small steps (see `steps.py` and `build_pipeline`).

Each step reads and enriches a `Context`; a step that rejects the message sets
`ctx.rejection` and the pipeline stops. Steps make decisions only: persisting, acknowledging
to the broker and fanning out happen in the ingest worker, after the pipeline.
"""
