"""Load a GGUF model into llama-cpp-python, with or without llama.cpp's extra buffer types.

Extra buffer types are llama.cpp's way of repacking weights at load for a faster kernel of this CPU: AMX tiles on an
Intel Xeon that has them, which is where ggml_backend_amx_mul_mat segfaults (ggml-org/llama.cpp#20824, PR #26954:
worker threads run tile instructions without the kernel's XTILEDATA permission). rae's build leaves AMX out, and, so
that a build made some other way cannot take that path either, the model is loaded without extra buffer types unless
a setting asks for them (``[model] extra_buffer_types = true``). For the embedded SmolLM2 file (Q4_1, which llama.cpp
does not repack) they change nothing else.

``Llama()`` takes no such argument: it loads the model in its constructor with the parameters that
``llama_cpp.llama_model_default_params()`` returns. So for the length of the constructor that function answers with
``use_extra_bufts`` set as asked, under a lock, and is put back at once.
"""

import threading
from pathlib import Path
from typing import Any

_LOADING = threading.Lock()


def load_llama(model_path: Path, n_ctx: int, seed: int, n_threads: int, extra_buffer_types: bool = False) -> Any:
    import llama_cpp.llama_cpp as bindings
    from llama_cpp import Llama

    defaults = bindings.llama_model_default_params

    def params() -> Any:
        chosen = defaults()
        chosen.use_extra_bufts = extra_buffer_types
        return chosen

    with _LOADING:
        bindings.llama_model_default_params = params
        try:
            return Llama(model_path=str(model_path), n_ctx=n_ctx, seed=seed, n_threads=n_threads, n_threads_batch=n_threads, verbose=False)
        finally:
            bindings.llama_model_default_params = defaults
