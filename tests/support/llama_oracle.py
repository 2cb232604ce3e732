"""llama.cpp as a reference for the tests: answers JSON requests, one per line on
stdin, with one JSON answer per line on stdout.

Usage: python3 llama_oracle.py MODEL.gguf

Only the vocabulary is loaded (no weights, no context). Requests name an operation:

  {"op": "tokenize", "text": str, "add_bos": bool, "special": bool}
      -> {"tokens": [int]}                      llama_tokenize(add_special, parse_special)
  {"op": "detokenize", "tokens": [int]}
      -> {"text": str, "hex": str}              llama_detokenize, no special tokens, as
                                                text (invalid UTF-8 replaced) and bytes
  {"op": "pieces"}
      -> {"hex": [str]}                         llama_token_to_piece of every token, no
                                                special tokens, as hex
  {"op": "end_of_generation"}
      -> {"tokens": [int]}                      every token llama_vocab_is_eog holds
  {"op": "chat", "content": str}
      -> {"text": str, "tokens": [int]}         one user message rendered with the GGUF's
                                                chat template and tokenized, as
                                                llama-cpp-python's chat completions do it
  {"op": "logprobs", "tokens": [int], "ids": [int], "flash_attn": bool}
      -> {"logprobs": [float]}                  natural-log probabilities of `ids` as the
                                                token after `tokens`, from the whole model
                                                (loaded on first use: n_ctx 4096, two
                                                threads, llama-cpp-python's defaults
                                                otherwise), with llama.cpp's flash-
                                                attention kernel or its default one

A request that fails is answered {"error": str}; the oracle goes on. New operations are
functions taking (model, request) and returning the answer, registered in OPERATIONS.
"""

import ctypes
import json
import math
import sys

import llama_cpp


class Model:
    def __init__(self, path):
        self.llama = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
        self.vocab = llama_cpp.llama_model_get_vocab(self.llama.model)
        self.path = path
        self.evaluators = {}

    def evaluator(self, flash_attn):
        """The whole model with one attention kernel, loaded on first need."""
        if flash_attn not in self.evaluators:
            self.evaluators[flash_attn] = llama_cpp.Llama(
                model_path=self.path,
                n_ctx=4096,
                n_threads=2,
                n_threads_batch=2,
                flash_attn=flash_attn,
                verbose=False,
            )
        return self.evaluators[flash_attn]

    def n_tokens(self):
        return llama_cpp.llama_vocab_n_tokens(self.vocab)


def tokenize(model, request):
    text = request["text"].encode("utf-8")
    # Never more tokens than bytes, plus BOS and EOS.
    capacity = len(text) + 8
    tokens = (llama_cpp.llama_token * capacity)()
    n = llama_cpp.llama_tokenize(
        model.vocab, text, len(text), tokens, capacity, request["add_bos"], request["special"]
    )
    if n < 0:
        raise RuntimeError(f"llama_tokenize needs {-n} tokens, more than {capacity}")
    return {"tokens": list(tokens[:n])}


def detokenize(model, request):
    ids = request["tokens"]
    tokens = (llama_cpp.llama_token * max(len(ids), 1))(*ids)
    capacity = 64 + 64 * len(ids)
    while True:
        buffer = ctypes.create_string_buffer(capacity)
        n = llama_cpp.llama_detokenize(model.vocab, tokens, len(ids), buffer, capacity, False, False)
        if n >= 0:
            break
        capacity = -n
    data = buffer.raw[:n]
    return {"text": data.decode("utf-8", errors="replace"), "hex": data.hex()}


def piece(model, token):
    capacity = 64
    while True:
        buffer = ctypes.create_string_buffer(capacity)
        n = llama_cpp.llama_token_to_piece(model.vocab, token, buffer, capacity, 0, False)
        if n >= 0:
            return buffer.raw[:n]
        capacity = -n


def pieces(model, _request):
    return {"hex": [piece(model, token).hex() for token in range(model.n_tokens())]}


def end_of_generation(model, _request):
    n = model.n_tokens()
    return {"tokens": [t for t in range(n) if llama_cpp.llama_vocab_is_eog(model.vocab, t)]}


def chat(model, request):
    # As Llama.__init__ builds its handler for "chat_template.default" and as the
    # handler tokenizes the rendered prompt.
    llama = model.llama
    template = llama.metadata.get("tokenizer.chat_template")
    if template is None:
        raise ValueError("the model has no tokenizer.chat_template")
    eos_id, bos_id = llama.token_eos(), llama.token_bos()
    formatter = llama_cpp.llama_chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=llama._model.token_get_text(eos_id) if eos_id != -1 else "",
        bos_token=llama._model.token_get_text(bos_id) if bos_id != -1 else "",
        stop_token_ids=[eos_id],
    )
    result = formatter(messages=[{"role": "user", "content": request["content"]}])
    tokens = llama.tokenize(
        result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
    )
    return {"text": result.prompt, "tokens": list(tokens)}


def logprobs(model, request):
    llama = model.evaluator(bool(request.get("flash_attn", False)))
    llama.reset()
    llama.eval(request["tokens"])
    # Only the last position's logits are computed (as a server scoring a prompt does).
    pointer = llama_cpp.llama_get_logits_ith(llama._ctx.ctx, -1)
    logits = [pointer[i] for i in range(llama.n_vocab())]
    top = max(logits)
    normalizer = top + math.log(sum(math.exp(l - top) for l in logits))
    return {"logprobs": [logits[i] - normalizer for i in request["ids"]]}


OPERATIONS = {
    "tokenize": tokenize,
    "detokenize": detokenize,
    "pieces": pieces,
    "end_of_generation": end_of_generation,
    "chat": chat,
    "logprobs": logprobs,
}


def main():
    model = Model(sys.argv[1])
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            operation = OPERATIONS.get(request.get("op"))
            if operation is None:
                raise ValueError(f"unknown op {request.get('op')!r} (known: {', '.join(OPERATIONS)})")
            answer = operation(model, request)
        except Exception as error:  # the test shows it; the oracle keeps serving
            answer = {"error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
