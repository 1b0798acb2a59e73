"""One ``LLM`` interface for the Metagente chapter's agents, with two back ends and a local test server.

Every agent of Metagente (extractor, summarizer, teacher, prompt combiner) is a prompt sent to a chat model at a
temperature (the official code: gpt-4o-mini at T=0 for the extractor and summarizer, gpt-4o at T=0.7 for the
teacher and T=0.2 for the combiner). Here a model is anything with ``__call__(prompt, temperature=0.0) -> str``:

* :class:`TransformersLLM` — a ``transformers`` causal LM: a zoo name, a local folder or a hub id (the chat template
  is applied when the tokenizer has one); sampling at ``temperature > 0`` draws from a seeded generator.
* :class:`OpenAICompatibleLLM` — any server that speaks the OpenAI ``/chat/completions`` protocol (OpenAI, vLLM,
  llama.cpp, Ollama, ...): ``base_url``, a model name and the key read from an environment variable. Requests have a
  timeout and a bounded number of retries; :meth:`OpenAICompatibleLLM.check` fails clearly before any work when the
  endpoint cannot be reached; the key never appears in a result, an error message or a ``repr``.
* :func:`serve_locally` — a stdlib ``http.server`` in a thread that serves ``/v1/chat/completions`` from any such
  callable (a zoo model, or the chapter's non-LLM stand-in), for tests and for the chapter's offline demonstration.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from .params import ParameterError


class LLM(Protocol):
    """What an agent needs from a model: text in, text out, at a temperature."""

    def __call__(self, prompt: str, temperature: float = 0.0) -> str: ...


class EndpointError(RuntimeError):
    """An OpenAI-compatible endpoint could not be reached or answered wrongly (the message never holds the key)."""


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced (a key must not leak through an echoed request)."""
    return text.replace(secret, "[redacted key]") if secret else text


@dataclass
class OpenAICompatibleLLM:
    """A chat model behind an OpenAI-compatible HTTP endpoint (``POST {base_url}/chat/completions``).

    The key is read from the environment variable ``api_key_env`` when a request is made, never stored in a field
    that ``repr`` shows; a missing variable is allowed (local servers need no key). ``timeout`` bounds each request
    in seconds; failed requests (connection errors, HTTP 429 and 5xx) are retried ``retries`` times with a doubling
    ``backoff``; other HTTP errors fail at once.
    """

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 30.0
    retries: int = 2
    backoff: float = 0.5
    max_tokens: int = 256
    calls: int = field(default=0, repr=False)

    def __post_init__(self):
        if not isinstance(self.base_url, str) or not self.base_url.startswith(("http://", "https://")):
            raise ParameterError(f"base_url={self.base_url!r} must start with http:// or https://")
        if not self.model:
            raise ParameterError("model must name the endpoint's model (e.g. 'gpt-4o-mini')")
        if self.timeout <= 0 or self.retries < 0:
            raise ParameterError(f"timeout must be > 0 and retries ≥ 0; got {self.timeout}, {self.retries}")
        self.base_url = self.base_url.rstrip("/")

    def _key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None

    def _request(self, path: str, payload: dict | None) -> dict:
        key = self._key()
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, headers=headers)
        last = "no attempt"
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read().decode())
            except urllib.error.HTTPError as error:
                body = error.read().decode(errors="replace")[:200]
                last = f"HTTP {error.code}: {body}"
                if error.code != 429 and error.code < 500:
                    break
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                last = f"{type(error).__name__}: {getattr(error, 'reason', error)}"
            except json.JSONDecodeError:
                last = "the answer is not JSON"
                break
            if attempt < self.retries:
                time.sleep(self.backoff * 2**attempt)
        raise EndpointError(
            redact(f"{self.base_url}{path} failed after {attempt + 1} attempt(s) (model {self.model!r}): {last}", key)
        )

    def check(self) -> None:
        """Fail now, with a clear message, if the endpoint cannot answer one tiny request."""
        self("Reply with the word ok.", temperature=0.0)

    def __call__(self, prompt: str, temperature: float = 0.0) -> str:
        payload = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": temperature,
            "max_tokens": self.max_tokens,
        }
        answer = self._request("/chat/completions", payload)
        self.calls += 1
        try:
            return str(answer["choices"][0]["message"]["content"]).strip()
        except (KeyError, IndexError, TypeError):
            raise EndpointError(
                redact(f"{self.base_url} answered without choices[0].message.content: {str(answer)[:200]}", self._key())
            ) from None


_BLOCK = re.compile(r"<<<\n(.*?)\n>>>", re.DOTALL)


def fit_prompt(prompt: str, count: Callable[[str], int], budget: int) -> str:
    """``prompt`` shortened to at most ``budget`` tokens (as ``count`` measures them) by cutting the longest text
    between ``<<<`` and ``>>>`` (the README or description slot) from its end, word by word: the instructions
    around it survive. A prompt that fits, or has no such block, comes back unchanged."""
    blocks = list(_BLOCK.finditer(prompt))
    if count(prompt) <= budget or not blocks:
        return prompt
    block = max(blocks, key=lambda m: len(m.group(1)))
    words = re.findall(r"\S+\s*", block.group(1))

    def cut(k: int) -> str:
        return prompt[: block.start(1)] + "".join(words[:k]).rstrip() + prompt[block.end(1) :]

    low, high = 0, len(words)  # the largest k whose cut fits, by bisection (count is monotone in k)
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if count(cut(middle)) <= budget else (low, middle - 1)
    return cut(low)


@dataclass
class TransformersLLM:
    """A ``transformers`` causal LM as an :class:`LLM`: a zoo name, a local folder or a hub id.

    Greedy decoding at temperature 0; at ``temperature > 0`` tokens are sampled with a generator seeded by ``seed``
    and the number of calls so far, so a run repeats. A prompt longer than ``max_prompt_tokens`` (or the model's
    context less ``max_new_tokens``) loses the end of its text slot (:func:`fit_prompt`), not its instructions; only
    if the instructions alone are too long is it truncated from the left.
    """

    name: str
    max_new_tokens: int = 32
    max_prompt_tokens: int = 512
    seed: int = 0
    calls: int = field(default=0, repr=False)
    model: object = field(default=None, repr=False)
    """A model already in memory (with ``tokenizer``): used as it is, ``name`` only labels it."""
    tokenizer: object = field(default=None, repr=False)

    def __post_init__(self):
        from . import zoo

        if self.model is None or self.tokenizer is None:
            self.model, self.tokenizer = zoo.load(self.name)  # a missing or unreachable id raises a clear ZooError

    def _ids(self, prompt: str):
        quiet = {"verbose": False}  # a prompt longer than the context is measured here, before fit_prompt cuts it
        if getattr(self.tokenizer, "chat_template", None):
            ids = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}],
                add_generation_prompt=True,
                return_tensors="pt",
                tokenizer_kwargs=quiet,
            )
            ids = ids if not isinstance(ids, dict) and not hasattr(ids, "input_ids") else ids["input_ids"]
        else:
            ids = self.tokenizer(prompt, return_tensors="pt", **quiet)["input_ids"]
        return ids

    def _encode(self, prompt: str):
        limit = getattr(self.model.config, "max_position_embeddings", None) or self.max_prompt_tokens
        budget = min(self.max_prompt_tokens, limit - self.max_new_tokens)
        ids = self._ids(fit_prompt(prompt, lambda p: self._ids(p).shape[1], budget))
        return ids[:, -budget:]

    def __call__(self, prompt: str, temperature: float = 0.0) -> str:
        import torch

        ids = self._encode(prompt)
        options = {"do_sample": False}
        if temperature > 0:
            torch.manual_seed(self.seed * 100_003 + self.calls)
            options = {"do_sample": True, "temperature": temperature}
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with torch.no_grad():
            out = self.model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=self.max_new_tokens,
                pad_token_id=pad,
                **options,
            )
        self.calls += 1
        return self.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()

    def batch(self, prompts: Sequence[str], batch_size: int = 16) -> list[str]:
        """Greedy answers to ``prompts``, ``batch_size`` at a time: each prompt cut as :meth:`__call__` cuts it,
        left-padded, with the attention mask ``generate`` derives position ids from. The same answers as one call
        per prompt up to floating-point ties (tested on the zoo's summarizer), at a fraction of the cost on a CPU,
        where a small model's per-token overhead dominates."""
        import torch

        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        answers = []
        for start in range(0, len(prompts), batch_size):
            rows = [self._encode(p)[0] for p in prompts[start : start + batch_size]]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), pad, dtype=rows[0].dtype)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for i, row in enumerate(rows):
                ids[i, width - len(row) :], mask[i, width - len(row) :] = row, 1
            with torch.no_grad():
                out = self.model.generate(
                    ids, attention_mask=mask, max_new_tokens=self.max_new_tokens, pad_token_id=pad, do_sample=False
                )
            self.calls += len(rows)
            answers += [self.tokenizer.decode(o[width:], skip_special_tokens=True).strip() for o in out]
        return answers


def _handler(model: Callable[..., str], expected_key: str | None):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # the test server stays silent (a request line could carry anything)
            return

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):  # noqa: N802 - the name http.server dispatches to
            if expected_key and self.headers.get("Authorization") != f"Bearer {expected_key}":
                self._reply(401, {"error": {"message": "invalid key"}})
                return
            if not self.path.endswith("/chat/completions"):
                self._reply(404, {"error": {"message": f"no route {self.path}"}})
                return
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            prompt = "\n".join(m.get("content", "") for m in request.get("messages", []))
            text = model(prompt, temperature=float(request.get("temperature", 0.0)))
            self._reply(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]})

    return Handler


@contextmanager
def serve_locally(model: Callable[..., str], expected_key: str | None = None) -> Iterator[str]:
    """Serve ``model`` at ``http://127.0.0.1:<free port>/v1`` in a thread; yields the base URL, stops on exit.

    With ``expected_key`` the server answers 401 unless the request carries ``Authorization: Bearer <key>``.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(model, expected_key))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
