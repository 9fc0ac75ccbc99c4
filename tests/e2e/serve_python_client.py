#!/usr/bin/python3
"""An independent client of kitty-serve: Debian's python3-grpcio + python3-protobuf.

The transport is grpcio's, not ours; the message classes are generated at run time from
proto/kitty/v1/inference.proto with `protoc --python_out` (no grpc_tools needed) and the
methods are called through channel.unary_stream / unary_unary.

  serve_python_client.py --server 127.0.0.1:50051 --proto-root proto \
      --prompt "Once upon a time" --max-tokens 16 --expect '{"token_ids": [...], "text": "..."}'

Checks (each prints "ok: ..."; the first failure exits 1 with one line):
  health SERVING for "" and kitty.v1.Inference; streaming and unary greedy generation match
  --expect (kitty-run's output); Tokenize and GetModelInfo; bad inputs (also bytes that do not
  parse: a string that is not UTF-8, a truncated message) get INVALID_ARGUMENT naming the field;
  a stream cancelled mid-way ends CANCELLED; a short deadline ends DEADLINE_EXCEEDED; 32
  concurrent streams all complete.
"""

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile

import grpc


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def ok(msg):
    print("ok: " + msg, flush=True)


def load_pb2(proto_root):
    out = tempfile.mkdtemp(prefix="kitty_pb2_")
    subprocess.run(["protoc", "--python_out=" + out, "-I", proto_root,
                    os.path.join(proto_root, "kitty/v1/inference.proto")], check=True)
    sys.path.insert(0, out)
    from kitty.v1 import inference_pb2  # noqa: E402  (generated above)
    return inference_pb2


def health_check(channel, service):
    # grpc.health.v1.HealthCheckRequest{service=1: string}; response {status=1: enum}.
    data = service.encode()
    req = (b"\x0a" + bytes([len(data)]) + data) if data else b""
    check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                request_serializer=lambda b: b,
                                response_deserializer=lambda b: b)
    resp = check(req, timeout=5)
    return resp[1] if len(resp) >= 2 and resp[0] == 0x08 else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--proto-root", required=True)
    ap.add_argument("--prompt", required=True)
    ap.add_argument("--max-tokens", type=int, required=True)
    ap.add_argument("--expect", required=True, help="kitty-run --json output")
    args = ap.parse_args()
    expect = json.loads(args.expect)
    pb = load_pb2(args.proto_root)

    channel = grpc.insecure_channel(args.server)
    grpc.channel_ready_future(channel).result(timeout=10)
    generate = channel.unary_stream("/kitty.v1.Inference/Generate",
                                    request_serializer=pb.GenerateRequest.SerializeToString,
                                    response_deserializer=pb.GenerateResponse.FromString)
    tokenize = channel.unary_unary("/kitty.v1.Inference/Tokenize",
                                   request_serializer=pb.TokenizeRequest.SerializeToString,
                                   response_deserializer=pb.TokenizeResponse.FromString)
    model_info = channel.unary_unary("/kitty.v1.Inference/GetModelInfo",
                                     request_serializer=pb.GetModelInfoRequest.SerializeToString,
                                     response_deserializer=pb.GetModelInfoResponse.FromString)

    for service in ("", "kitty.v1.Inference"):
        status = health_check(channel, service)
        if status != 1:
            fail("health(%r) = %d, want SERVING(1)" % (service, status))
    ok("health SERVING")

    def greedy(stream, **extra):
        return pb.GenerateRequest(prompt=args.prompt, stream=stream, sampling_params=pb.SamplingParams(
            max_tokens=args.max_tokens, temperature=0.0), **extra)

    # Streaming: deltas concatenate to kitty-run's output; usage on the last message only.
    responses = list(generate(greedy(True), timeout=60))
    ids, text = [], ""
    for i, r in enumerate(responses):
        for o in r.outputs:
            ids += list(o.token_ids)
            text += o.text
        last = i == len(responses) - 1
        if r.HasField("usage") != last:
            fail("usage on message %d of %d" % (i, len(responses)))
    if ids != expect["token_ids"] or text != expect["text"]:
        fail("stream %r %r != kitty-run %r %r" % (ids, text, expect["token_ids"], expect["text"]))
    if responses[-1].outputs[0].finish_reason != expect["finish_reason"]:
        fail("finish_reason %r" % responses[-1].outputs[0].finish_reason)
    if responses[-1].usage.completion_tokens != len(ids):
        fail("usage.completion_tokens %d != %d" % (responses[-1].usage.completion_tokens, len(ids)))
    ok("streaming greedy matches kitty-run (%d messages)" % len(responses))

    # Unary: exactly one message with the whole result.
    responses = list(generate(greedy(False, request_id="py-unary"), timeout=60))
    if len(responses) != 1:
        fail("stream=false gave %d messages" % len(responses))
    r = responses[0]
    if r.request_id != "py-unary":
        fail("request_id %r" % r.request_id)
    if list(r.outputs[0].token_ids) != expect["token_ids"] or r.outputs[0].text != expect["text"]:
        fail("unary output differs from kitty-run")
    ok("unary greedy matches kitty-run")

    toks = tokenize(pb.TokenizeRequest(text=args.prompt, add_special_tokens=True), timeout=10)
    if list(toks.token_ids) != expect["prompt_token_ids"]:
        fail("Tokenize %r != %r" % (list(toks.token_ids), expect["prompt_token_ids"]))
    info = model_info(pb.GetModelInfoRequest(), timeout=10)
    if info.vocab_size <= 0 or info.context_length <= 0 or info.kv_capacity_tokens <= 0:
        fail("GetModelInfo %s" % info)
    ok("Tokenize and GetModelInfo (context %d, vocab %d)" % (info.context_length, info.vocab_size))

    # Bad inputs: INVALID_ARGUMENT naming the field.
    long_prompt = [1] * (info.context_length + 10)
    bad = [
        (pb.GenerateRequest(), "prompt"),
        (pb.GenerateRequest(prompt_token_ids=[1, info.vocab_size + 5]), "prompt_token_ids"),
        (pb.GenerateRequest(prompt_token_ids=long_prompt), "prompt_token_ids"),
        (pb.GenerateRequest(prompt="hi", sampling_params=pb.SamplingParams(top_p=0)), "top_p"),
        (pb.GenerateRequest(prompt="hi", sampling_params=pb.SamplingParams(temperature=-1)),
         "temperature"),
        (pb.GenerateRequest(prompt="hi", sampling_params=pb.SamplingParams(max_tokens=0)),
         "max_tokens"),
    ]
    for req, field in bad:
        try:
            list(generate(req, timeout=10))
            fail("bad request %r accepted" % req)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.INVALID_ARGUMENT or field not in e.details():
                fail("bad %s: %s %r" % (field, e.code(), e.details()))
    ok("bad inputs → INVALID_ARGUMENT naming the field")

    # Bytes that are no valid request (a raw C++ client can send them; grpcio's own serializer
    # would refuse): INVALID_ARGUMENT naming the field or the message, not UNIMPLEMENTED.
    raw_generate = channel.unary_stream("/kitty.v1.Inference/Generate")
    raw_tokenize = channel.unary_unary("/kitty.v1.Inference/Tokenize")
    stop_bad = pb.SamplingParams(max_tokens=4).SerializeToString() + b"\x3a\x02\xed\xa0"  # stop=7
    raw_bad = [
        (raw_generate, b"\x12\x03ab\xff", "kitty.v1.GenerateRequest.prompt is not valid UTF-8"),
        (raw_generate, pb.GenerateRequest(prompt="hi").SerializeToString() + b"\x22" +
         bytes([len(stop_bad)]) + stop_bad,
         "kitty.v1.GenerateRequest.sampling_params.stop is not valid UTF-8"),
        (raw_generate, b"\x12\x10ab", "not a valid kitty.v1.GenerateRequest"),
        (raw_tokenize, b"\x0a\x01\xc0", "kitty.v1.TokenizeRequest.text is not valid UTF-8"),
    ]
    for method, body, want in raw_bad:
        try:
            r = method(body, timeout=10)
            if method is raw_generate:
                list(r)
            fail("raw request %r accepted" % body)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.INVALID_ARGUMENT or want not in e.details():
                fail("raw %r: %s %r" % (body, e.code(), e.details()))
    ok("unparsable requests → INVALID_ARGUMENT naming the field or message")

    # Cancel mid-way: read two deltas, then cancel.
    long_req = pb.GenerateRequest(prompt=args.prompt, stream=True, request_id="py-cancel",
                                  sampling_params=pb.SamplingParams(max_tokens=400, ignore_eos=True,
                                                                    temperature=0.0))
    call = generate(long_req, timeout=120)
    next(call)
    next(call)
    call.cancel()
    try:
        for _ in call:
            pass
        fail("cancelled stream ended normally")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.CANCELLED:
            fail("cancel gave %s" % e.code())
    ok("cancelled stream → CANCELLED")

    # Deadline: the request is aborted server-side (pages checked by the caller via /metrics).
    try:
        list(generate(pb.GenerateRequest(prompt=args.prompt, stream=True, request_id="py-deadline",
                                         sampling_params=pb.SamplingParams(
                                             max_tokens=480, ignore_eos=True)), timeout=0.05))
        fail("deadline not enforced")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            fail("deadline gave %s" % e.code())
    ok("short deadline → DEADLINE_EXCEEDED")

    # 32 concurrent streams, all complete with their full length.
    def one(i):
        req = pb.GenerateRequest(prompt=args.prompt, stream=True, request_id="py-conc-%d" % i,
                                 sampling_params=pb.SamplingParams(max_tokens=8, ignore_eos=True,
                                                                   seed=i))
        n, reason = 0, ""
        for r in generate(req, timeout=120):
            for o in r.outputs:
                n += len(o.token_ids)
                reason = o.finish_reason or reason
        return n, reason

    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(one, range(32)))
    if any(r != (8, "length") for r in results):
        fail("concurrent results %r" % results)
    ok("32 concurrent streams complete")
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
