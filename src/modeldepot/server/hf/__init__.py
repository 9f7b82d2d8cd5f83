"""The Hugging Face Hub API (`/hf`): the depot as `HF_ENDPOINT` for `huggingface_hub`,
transformers and llama-cpp-python. `routes` answers, `repos` maps repo ids and revisions to
depot versions (with the key's scope and the gate), `views` shapes the answers, `errors` gives
them the codes the client turns into its own exceptions; `xet` answers the Xet protocol
`hf_xet` downloads large files with (`/xet`), in the layout `xorbs` derives."""

from modeldepot.server.hf.errors import HubError, hub_error_handler
from modeldepot.server.hf.routes import router
from modeldepot.server.hf.xet import router as xet_router

__all__ = ["HubError", "hub_error_handler", "router", "xet_router"]
