"""The peer of `aekit serve` in bench/serve_bench.py: the same run served the way Python users
serve an autoencoder today, FastAPI on uvicorn running the PyTorch model loaded by
python/aekit_torch.py, in its fastest plain configuration we found: a sync endpoint (FastAPI's
thread pool), orjson in and out instead of Pydantic and FastAPI's encoder, forward passes under
torch.inference_mode(). Same routes and JSON as aekit: raw samples in, preprocessed by the run's
scaling; decodes out in the raw scale.

    AEKIT_RUN=runs/vae2d uvicorn --app-dir bench serve_peer_fastapi:app --port 8091
"""

import json
import os
import sys

import numpy as np
import orjson
import torch
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
from aekit_torch import load_run  # noqa: E402

RUN = os.environ["AEKIT_RUN"]
model, config = load_run(RUN)
with open(os.path.join(RUN, "preprocess.json")) as f:
    _p = json.load(f)
OFFSET = np.asarray(_p["offset"], dtype=np.float32)
SCALE = np.asarray(_p["scale"], dtype=np.float32)
NAME = os.path.basename(os.path.normpath(RUN))

app = FastAPI()


def _rows(body, field):
    return np.asarray(orjson.loads(body)[field], dtype=np.float32)


def _json(payload):
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


# The body is read asynchronously; parsing and the model run in FastAPI's thread pool, as in a
# sync `def` endpoint.
def _encode_rows(body):
    x = torch.from_numpy((_rows(body, "x") - OFFSET) * SCALE)
    with torch.inference_mode():
        return _json({"codes": model.encode(x).numpy()})


def _decode_rows(body):
    z = torch.from_numpy(_rows(body, "codes"))
    with torch.inference_mode():
        x = model.decode(z).numpy()
    return _json({"x": x / SCALE + OFFSET})


@app.post(f"/v1/runs/{NAME}/encode")
async def encode_route(request: Request):
    return await run_in_threadpool(_encode_rows, await request.body())


@app.post(f"/v1/runs/{NAME}/decode")
async def decode_route(request: Request):
    return await run_in_threadpool(_decode_rows, await request.body())
