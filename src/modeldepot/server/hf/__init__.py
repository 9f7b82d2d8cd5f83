"""The Hugging Face Hub API (`/hf`): the depot as `HF_ENDPOINT` for `huggingface_hub`,
transformers and llama-cpp-python. `routes` answers, `repos` maps repo ids and revisions to
depot versions (with the key's scope and the gate), `views` shapes the answers, `errors` gives
them the codes the client turns into its own exceptions."""

from modeldepot.server.hf.errors import HubError, hub_error_handler
from modeldepot.server.hf.routes import router

__all__ = ["HubError", "hub_error_handler", "router"]
