#!/usr/bin/python3
"""Fine-tune a tiny llama-architecture GGUF model on CPU with PyTorch.

Flywheel's local platform runs this script for a customization job. The
training data is already tokenized (by Flywheel, with the model's own
tokenizer): one JSON object per line, {"ids": [...], "n_prompt": k}; the loss
is taken on the tokens after the first k (the assistant's answer) only.

Modes:
  full  trains every weight and writes a GGUF model with the same layout as
        the base (the base file with its tensor data replaced);
  lora  trains low-rank adapters on the chosen linear layers and writes a
        llama.cpp LoRA adapter GGUF (served with llama-server --lora).

Each batch's shared prefix (the system prompt and tool list its records have
in common) is computed once, not once per row, and the output projection
only at the answer's positions; the loss and gradients are those of the
plain full batch. A model without output.weight has tied embeddings.

--bench STEPS measures the training step's throughput against PyTorch's raw
forward and backward pass over the same model and batches, and prints it.

Progress goes to stdout as JSON lines:
  {"event": "start", "total_steps": N, "examples": M, ...}
  {"event": "step", "step": s, "epoch": e, "loss": l, "progress": p}
  {"event": "eval", "step": s, "val_loss": v}
  {"event": "checkpoint", "step": s, "output": path}   (--save-steps)
  {"event": "done", "output": path, "kind": "model"|"lora", "steps": s}
  {"event": "cancelled", "step": s}     (after SIGTERM or SIGINT)
  {"event": "error", "message": text}
The exit status is 0 when done, 3 when cancelled, 1 on error.
"""

import argparse
import json
import math
import os
import random
import signal
import struct
import sys
import time

GGUF_MAGIC = 0x46554747
GGML_F32 = 0

# metadata value type -> struct format (scalars)
_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class GGUF:
    """A minimal GGUF reader: metadata, tensor infos and data offsets."""

    def __init__(self, path):
        self.path = path
        self.kv = {}
        self.tensors = []  # (name, dims, type, absolute offset)
        with open(path, "rb") as f:
            data = f.read()
        self.raw = data
        pos = 0

        def take(fmt):
            nonlocal pos
            v = struct.unpack_from(fmt, data, pos)[0]
            pos += struct.calcsize(fmt)
            return v

        def string():
            nonlocal pos
            n = take("<Q")
            s = data[pos:pos + n].decode("utf-8", "replace")
            pos += n
            return s

        def value(t):
            if t in _SCALAR:
                return take(_SCALAR[t])
            if t == 8:
                return string()
            if t == 9:
                et = take("<I")
                n = take("<Q")
                return [value(et) for _ in range(n)]
            raise ValueError("unknown metadata type %d" % t)

        if take("<I") != GGUF_MAGIC:
            raise ValueError("%s is not a GGUF file" % path)
        version = take("<I")
        if version not in (2, 3):
            raise ValueError("unsupported GGUF version %d" % version)
        n_tensors = take("<Q")
        n_kv = take("<Q")
        for _ in range(n_kv):
            k = string()
            self.kv[k] = value(take("<I"))
        infos = []
        for _ in range(n_tensors):
            name = string()
            nd = take("<I")
            dims = [take("<Q") for _ in range(nd)]
            typ = take("<I")
            off = take("<Q")
            infos.append((name, dims, typ, off))
        align = int(self.kv.get("general.alignment", 32))
        start = (pos + align - 1) // align * align
        self.tensors = [(n, d, t, start + o) for (n, d, t, o) in infos]

    def tensor(self, name):
        import numpy as np
        for n, dims, typ, off in self.tensors:
            if n == name:
                if typ != GGML_F32:
                    raise ValueError("tensor %s is not F32 (type %d)" % (name, typ))
                count = 1
                for d in dims:
                    count *= d
                arr = np.frombuffer(self.raw, dtype="<f4", count=count, offset=off)
                return arr.reshape(list(reversed(dims))).copy()
        raise KeyError(name)


def write_gguf(path, kvs, tensors, align=32):
    """Write a GGUF v3 file. kvs: list of (key, type, value); tensors:
    list of (name, float32 numpy array in torch layout)."""
    out = bytearray()

    def put(fmt, v):
        out.extend(struct.pack(fmt, v))

    def put_str(s):
        b = s.encode("utf-8")
        put("<Q", len(b))
        out.extend(b)

    put("<I", GGUF_MAGIC)
    put("<I", 3)
    put("<Q", len(tensors))
    put("<Q", len(kvs))
    for k, t, v in kvs:
        put_str(k)
        put("<I", t)
        if t == 8:
            put_str(v)
        else:
            put(_SCALAR[t], v)
    offsets = []
    off = 0
    for name, arr in tensors:
        offsets.append(off)
        off += arr.size * 4
        off = (off + align - 1) // align * align
    for (name, arr), o in zip(tensors, offsets):
        put_str(name)
        dims = list(reversed(arr.shape))
        put("<I", len(dims))
        for d in dims:
            put("<Q", d)
        put("<I", GGML_F32)
        put("<Q", o)
    out.extend(b"\0" * ((len(out) + align - 1) // align * align - len(out)))
    start = len(out)
    for (name, arr), o in zip(tensors, offsets):
        out.extend(b"\0" * (start + o - len(out)))
        out.extend(arr.astype("<f4").tobytes())
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(out)
    os.replace(tmp, path)


def build_model(torch, g, args):
    nn = torch.nn
    F = torch.nn.functional
    kv = g.kv
    E = int(kv["llama.embedding_length"])
    L = int(kv["llama.block_count"])
    H = int(kv["llama.attention.head_count"])
    Hkv = int(kv.get("llama.attention.head_count_kv", H))
    eps = float(kv.get("llama.attention.layer_norm_rms_epsilon", 1e-5))
    base = float(kv.get("llama.rope.freq_base", 10000.0))
    D = E // H
    if Hkv != H:
        raise ValueError("grouped-query attention is not supported by this trainer")

    def P(name):
        return nn.Parameter(torch.from_numpy(g.tensor(name)))

    class LoRALinear(nn.Module):
        def __init__(self, weight, rank, alpha, dropout):
            super().__init__()
            self.weight = weight
            self.weight.requires_grad_(False)
            out_f, in_f = weight.shape
            self.a = nn.Parameter(torch.randn(rank, in_f) / math.sqrt(in_f))
            self.b = nn.Parameter(torch.zeros(out_f, rank))
            self.scale = alpha / rank
            self.drop = nn.Dropout(dropout)

        def forward(self, x):
            return F.linear(x, self.weight) + self.scale * F.linear(F.linear(self.drop(x), self.a), self.b)

    class Plain(nn.Module):
        def __init__(self, weight):
            super().__init__()
            self.weight = weight

        def forward(self, x):
            return F.linear(x, self.weight)

    targets = set(args.targets.split(",")) if args.mode == "lora" else set()

    def lin(name, short):
        w = P(name)
        if short in targets:
            return LoRALinear(w, args.rank, args.alpha, args.dropout)
        return Plain(w)

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    class Block(nn.Module):
        def __init__(self, i):
            super().__init__()
            p = "blk.%d." % i
            self.attn_norm = P(p + "attn_norm.weight")
            self.q = lin(p + "attn_q.weight", "q")
            self.k = lin(p + "attn_k.weight", "k")
            self.v = lin(p + "attn_v.weight", "v")
            self.o = lin(p + "attn_output.weight", "o")
            self.ffn_norm = P(p + "ffn_norm.weight")
            self.gate = lin(p + "ffn_gate.weight", "gate")
            self.up = lin(p + "ffn_up.weight", "up")
            self.down = lin(p + "ffn_down.weight", "down")

        def forward(self, x, cos, sin, mask, past=None):
            """x: (B, T, E). past: the keys and values (1, H, P, D) of a
            prefix all B rows share, which x continues. Returns the new x
            and x's own keys and values."""
            B, T, _ = x.shape
            h = rms(x, self.attn_norm)
            q = self.q(h).view(B, T, H, D)
            k = self.k(h).view(B, T, H, D)
            v = self.v(h).view(B, T, H, D)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            kv = (k, v)
            if past is not None:
                k = torch.cat((past[0].expand(B, -1, -1, -1), k), dim=2)
                v = torch.cat((past[1].expand(B, -1, -1, -1), v), dim=2)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(D) + mask
            y = torch.softmax(att, dim=-1) @ v
            x = x + self.o(y.transpose(1, 2).reshape(B, T, E))
            h = rms(x, self.ffn_norm)
            return x + self.down(F.silu(self.gate(h)) * self.up(h)), kv

    def rope(x, cos, sin):
        # llama.cpp's NORM rope: rotate adjacent pairs (x[2i], x[2i+1]).
        x0, x1 = x[..., 0::2], x[..., 1::2]
        r0 = x0 * cos - x1 * sin
        r1 = x0 * sin + x1 * cos
        return torch.stack((r0, r1), dim=-1).flatten(-2)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embd = P("token_embd.weight")
            self.blocks = nn.ModuleList([Block(i) for i in range(L)])
            self.norm = P("output_norm.weight")
            # Without output.weight the output projection is the token
            # embedding (tied), as in llama.cpp.
            self.tied = not any(t[0] == "output.weight" for t in g.tensors)
            self.out = self.embd if self.tied else P("output.weight")
            inv = base ** (-torch.arange(0, D, 2, dtype=torch.float32) / D)
            self.register_buffer("inv_freq", inv, persistent=False)

        def forward(self, ids):
            return F.linear(self.hidden(ids), self.out)

        def run(self, ids, start=0, pasts=None):
            """Run the blocks over ids (B, T) at positions start.. after a
            shared prefix whose keys and values are pasts (one per block).
            Returns the final hidden states and the blocks' keys and values."""
            B, T = ids.shape
            pos = torch.arange(start, start + T, dtype=torch.float32)
            ang = pos[:, None] * self.inv_freq[None, :]  # T, D/2
            cos = ang.cos()[None, :, None, :]
            sin = ang.sin()[None, :, None, :]
            mask = torch.full((T, T), float("-inf")).triu(1)
            if start:
                mask = torch.cat((torch.zeros(T, start), mask), dim=1)
            x = F.embedding(ids, self.embd)
            kvs = []
            for i, blk in enumerate(self.blocks):
                x, kv = blk(x, cos, sin, mask, pasts[i] if pasts else None)
                kvs.append(kv)
            return x, kvs

        def hidden(self, ids, prefix=0):
            """The final normalised hidden states (B, T - prefix, E) of the
            positions after the first prefix tokens, which every row must
            share: they are computed once, not B times."""
            pasts = None
            if prefix:
                _, pasts = self.run(ids[:1, :prefix])
            x, _ = self.run(ids[:, prefix:], prefix, pasts)
            return rms(x, self.norm)

    model = Model()
    if args.mode == "lora":
        for n, p in model.named_parameters():
            if not (n.endswith(".a") or n.endswith(".b")):
                p.requires_grad_(False)
    return model, L


def load_examples(path, vocab, max_len):
    examples = []
    skipped = 0
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
                ids = [int(i) for i in rec["ids"]]
                n_prompt = int(rec["n_prompt"])
            except (ValueError, KeyError, TypeError) as e:
                emit({"event": "warning", "message": "%s line %d: %s" % (path, lineno, e)})
                skipped += 1
                continue
            if not ids or n_prompt >= len(ids) or any(i < 0 or i >= vocab for i in ids):
                emit({"event": "warning", "message": "%s line %d: no answer tokens or ids out of range" % (path, lineno)})
                skipped += 1
                continue
            if len(ids) > max_len:
                # keep the answer: cut the prompt from the left
                cut = len(ids) - max_len
                if cut >= n_prompt:
                    emit({"event": "warning", "message": "%s line %d: answer longer than %d tokens" % (path, lineno, max_len)})
                    skipped += 1
                    continue
                ids = ids[cut:]
                n_prompt -= cut
            examples.append((ids, n_prompt))
    return examples, skipped


def shared_prefix(torch, inp, tgt):
    """The number of leading tokens every row of a batch shares and that
    carry no loss (the system prompt and tool list of a workload's records):
    the model computes them once per batch."""
    if inp.shape[0] < 2:
        return 0
    same = (inp == inp[:1]).all(dim=0).tolist() + [False]
    lcp = same.index(False)
    first_loss = int((tgt != -100).any(dim=0).nonzero()[0])
    return max(0, min(lcp, first_loss, inp.shape[1] - 1))


def answer_loss(torch, model, inp, tgt, reduction="mean"):
    """Cross-entropy on the answer tokens only. The shared prefix is
    computed once per batch, and the output projection (the vocabulary-sized
    matmul) at the answer positions alone; the result is the plain
    full-batch loss."""
    prefix = shared_prefix(torch, inp, tgt)
    h = model.hidden(inp, prefix)
    tgt = tgt[:, prefix:]
    sel = tgt != -100
    logits = torch.nn.functional.linear(h[sel], model.out)
    return torch.nn.functional.cross_entropy(logits, tgt[sel], reduction=reduction)


def batches(torch, examples, bs, rng):
    """Yield shuffled batches of similar length: a batch is padded to its
    longest example, so a mixed corpus of short and long records batched
    at random spends most of its time on padding. Examples are shuffled,
    sorted by length within windows of 64 batches, and the batches of each
    window shuffled again (deterministic for rng)."""
    order = list(range(len(examples)))
    rng.shuffle(order)
    window = bs * 64
    groups = []
    for w in range(0, len(order), window):
        part = sorted(order[w:w + window], key=lambda j: len(examples[j][0]))
        chunks = [part[i:i + bs] for i in range(0, len(part), bs)]
        rng.shuffle(chunks)
        groups.extend(chunks)
    for idx in groups:
        chunk = [examples[j] for j in idx]
        T = max(len(ids) for ids, _ in chunk) - 1
        inp = torch.zeros((len(chunk), T), dtype=torch.long)
        tgt = torch.full((len(chunk), T), -100, dtype=torch.long)
        for r, (ids, n_prompt) in enumerate(chunk):
            n = len(ids) - 1
            inp[r, :n] = torch.tensor(ids[:-1])
            t = torch.tensor(ids[1:])
            t[: n_prompt - 1] = -100
            tgt[r, :n] = t
        yield inp, tgt


def bench(torch, model, train, args, train_step):
    """Measure the trainer's throughput against PyTorch's raw forward and
    backward pass over the same model and batches (no optimizer, no batch
    making, logits at every position), in tokens per CPU second."""
    n = args.bench
    rng = random.Random(args.seed)
    fixed = []
    while len(fixed) < n:
        fixed.extend(batches(torch, train, args.batch_size, rng))
    fixed = fixed[:n]
    tokens = sum(int((inp != 0).sum()) for inp, _ in fixed)  # pad id is 0

    def raw():
        for inp, tgt in fixed:
            logits = model(inp)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100)
            model.zero_grad(set_to_none=True)
            loss.backward()

    def trainer():
        # The training loop's own work: make the batches from the examples
        # (same order as above), then the real step.
        brng = random.Random(args.seed)
        done = 0
        while done < n:
            for inp, tgt in batches(torch, train, args.batch_size, brng):
                if done >= n:
                    break
                train_step(inp, tgt, done)
                done += 1

    def timed(fn):
        c0, w0 = time.process_time(), time.monotonic()
        fn()
        return time.process_time() - c0, time.monotonic() - w0

    raw_c = raw_w = tr_c = tr_w = 0.0
    for fn in (raw, trainer):  # warm up
        fn()
    for _ in range(2):  # interleaved, so that a busy machine hurts both alike
        c, w = timed(raw)
        raw_c, raw_w = raw_c + c, raw_w + w
        c, w = timed(trainer)
        tr_c, tr_w = tr_c + c, tr_w + w
    emit({"event": "bench", "steps": n, "batch_size": args.batch_size, "tokens_per_pass": tokens,
          "trainer_tokens_per_cpu_s": round(2 * tokens / tr_c), "raw_tokens_per_cpu_s": round(2 * tokens / raw_c),
          "ratio": round(raw_c / tr_c, 3),
          "trainer_tokens_per_s": round(2 * tokens / tr_w), "raw_tokens_per_s": round(2 * tokens / raw_w)})
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="base model GGUF (F32)")
    ap.add_argument("--train", required=True, help="tokenized training examples (JSON lines)")
    ap.add_argument("--val", help="tokenized validation examples (JSON lines)")
    ap.add_argument("--out", required=True, help="output GGUF path")
    ap.add_argument("--mode", choices=["full", "lora"], default="full")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--epoch-size", type=int, default=0,
                    help="examples that make an epoch (0: all of --train; with augmented data, the number of records)")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: epochs decide)")
    ap.add_argument("--max-seconds", type=float, default=0, help="stop after this much training time (0: no limit)")
    ap.add_argument("--max-len", type=int, default=512)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--targets", default="q,k,v,o,gate,up,down")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--bench", type=int, default=0, metavar="STEPS",
                    help="measure throughput over STEPS batches against raw forward+backward, print it, write nothing")
    ap.add_argument("--save-steps", default="",
                    help="comma-separated steps after which to write a checkpoint OUT.stepN.gguf (for accuracy curves)")
    args = ap.parse_args()

    stop = {"flag": False}

    def on_signal(signum, frame):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    # One thread for every math library, set before they load: BLAS
    # threads would make results depend on the machine's load, and an
    # oversubscribed core stalls them.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(max(1, args.threads))
    try:
        import numpy  # noqa: F401
        import torch
    except ImportError as e:
        emit({"event": "error", "message": "PyTorch is not installed (%s); run scripts/install-local.sh" % e})
        return 1
    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    try:
        g = GGUF(args.base)
        vocab = int(g.kv.get("llama.vocab_size", len(g.kv.get("tokenizer.ggml.tokens", []))))
        model, n_layers = build_model(torch, g, args)
    except (OSError, ValueError, KeyError) as e:
        emit({"event": "error", "message": "load base model %s: %s" % (args.base, e)})
        return 1
    train, skipped = load_examples(args.train, vocab, args.max_len)
    if not train:
        emit({"event": "error", "message": "no usable training examples in %s (%d skipped)" % (args.train, skipped)})
        return 1
    val = []
    if args.val and os.path.exists(args.val):
        val, _ = load_examples(args.val, vocab, args.max_len)

    steps_per_epoch = math.ceil((args.epoch_size or len(train)) / args.batch_size)
    total = steps_per_epoch * max(1, args.epochs)
    if args.max_steps > 0:
        total = min(total, args.max_steps) if args.epochs > 0 else args.max_steps
    params = [p for p in model.parameters() if p.requires_grad]
    n_train = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay, betas=(0.9, 0.98))
    warm = max(1, total // 10)

    def lr_at(step):
        if step < warm:
            return args.lr * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))

    emit({"event": "start", "total_steps": total, "steps_per_epoch": steps_per_epoch, "examples": len(train),
          "skipped": skipped, "val_examples": len(val), "trainable_params": n_train, "mode": args.mode})

    def val_loss():
        if not val:
            return None
        model.eval()
        tot, n = 0.0, 0
        with torch.no_grad():
            for inp, tgt in batches(torch, val, args.batch_size, random.Random(0)):
                tot += answer_loss(torch, model, inp, tgt, reduction="sum").item()
                n += int((tgt != -100).sum())
        model.train()
        return tot / max(1, n)

    def export(path):
        """Write the trained model (full) or adapter (lora) to path; return its kind."""
        if args.mode == "full":
            import numpy as np
            raw = bytearray(g.raw)
            state = {
                "token_embd.weight": model.embd, "output_norm.weight": model.norm, "output.weight": model.out,
            }
            for i, b in enumerate(model.blocks):
                p = "blk.%d." % i
                state.update({p + "attn_norm.weight": b.attn_norm, p + "ffn_norm.weight": b.ffn_norm,
                              p + "attn_q.weight": b.q.weight, p + "attn_k.weight": b.k.weight,
                              p + "attn_v.weight": b.v.weight, p + "attn_output.weight": b.o.weight,
                              p + "ffn_gate.weight": b.gate.weight, p + "ffn_up.weight": b.up.weight,
                              p + "ffn_down.weight": b.down.weight})
            for name, dims, typ, off in g.tensors:
                arr = state[name].detach().numpy().astype("<f4")
                raw[off:off + arr.size * 4] = arr.tobytes()
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(raw)
            os.replace(tmp, path)
            kind = "model"
        else:
            names = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output", "gate": "ffn_gate", "up": "ffn_up",
                     "down": "ffn_down"}
            tensors = []
            for i, b in enumerate(model.blocks):
                for short, gname in names.items():
                    m = getattr(b, short)
                    if hasattr(m, "a"):
                        base_name = "blk.%d.%s.weight" % (i, gname)
                        tensors.append((base_name + ".lora_a", m.a.detach().numpy()))
                        tensors.append((base_name + ".lora_b", m.b.detach().numpy()))
            kvs = [("general.architecture", 8, "llama"), ("general.type", 8, "adapter"), ("adapter.type", 8, "lora"),
                   ("adapter.lora.alpha", 6, float(args.alpha))]
            write_gguf(path, kvs, tensors)
            kind = "lora"
        return kind

    def train_step(inp, tgt, step):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        loss = answer_loss(torch, model, inp, tgt)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss

    if args.bench > 0:
        return bench(torch, model, train, args, train_step)

    save_steps = {int(x) for x in args.save_steps.split(",") if x.strip()}
    started = time.monotonic()
    step = 0
    model.train()
    budget_hit = False

    def stream():
        # Passes over the examples, each in a new order.
        while True:
            yield from batches(torch, train, args.batch_size, rng)

    for inp, tgt in stream():
        if step >= total or stop["flag"]:
            break
        if args.max_seconds > 0 and time.monotonic() - started > args.max_seconds:
            budget_hit = True
            break
        loss = train_step(inp, tgt, step)
        step += 1
        if step in save_steps:
            path = "%s.step%d.gguf" % (args.out, step)
            export(path)
            emit({"event": "checkpoint", "step": step, "output": path})
        emit({"event": "step", "step": step, "epoch": round(step / steps_per_epoch, 4), "loss": round(loss.item(), 5),
              "progress": round(step / total, 4), "elapsed": round(time.monotonic() - started, 2)})
        if step % steps_per_epoch == 0 and step < total:
            v = val_loss()
            if v is not None:
                emit({"event": "eval", "step": step, "epoch": step // steps_per_epoch, "val_loss": round(v, 5)})
    if stop["flag"]:
        emit({"event": "cancelled", "step": step})
        return 3

    kind = export(args.out)
    v = val_loss()
    emit({"event": "done", "output": args.out, "kind": kind, "steps": step, "epochs": round(step / steps_per_epoch, 4),
          "val_loss": None if v is None else round(v, 5), "seconds": round(time.monotonic() - started, 2),
          "budget_hit": budget_hit})
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        emit({"event": "cancelled"})
        sys.exit(3)
    except Exception as e:  # report, then fail
        emit({"event": "error", "message": "%s: %s" % (type(e).__name__, e)})
        sys.exit(1)
