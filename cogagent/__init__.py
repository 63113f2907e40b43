"""CogAgent: model, config, generation. ``import cogagent`` stays light: torch loads on first use of the model."""

from .config import CogAgentConfig

__all__ = ["CogAgentConfig", "CogAgentForCausalLM"]


def __getattr__(name):
    if name == "CogAgentForCausalLM":
        from .modeling_cogagent import CogAgentForCausalLM

        return CogAgentForCausalLM
    raise AttributeError(f"module 'cogagent' has no attribute {name!r}")
