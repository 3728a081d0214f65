"""The rollout type: what a sampler returns and what every loss over sampled completions reads.

It lives on its own (below :mod:`.generation` and :mod:`.logprobs`, which both use it) so that no module of
:mod:`utils.lm` needs another only for a type. Shapes: ``B`` rows (one per sampled completion; prompts x samples
per prompt, prompt-major), ``P`` padded prompt length, ``T`` padded completion length.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass
class Samples:
    """Generated completions.

    Attributes:
        prompt_ids: ``[B, P]`` left-padded prompt tokens.
        prompt_mask: ``[B, P]`` 1 for real prompt tokens.
        completion_ids: ``[B, T]`` generated tokens, padded with the pad id after the end token.
        completion_mask: ``[B, T]`` 1 for generated tokens up to and including the end token.
        logprobs: ``[B, T]`` log-probability of each generated token under the (temperature-scaled)
            policy, 0 where the mask is 0.
        texts: ``B`` decoded completions (special tokens removed, format tags kept).
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    logprobs: torch.Tensor
    texts: list[str]

    @property
    def lengths(self) -> torch.Tensor:
        """``[B]`` number of generated tokens per sequence."""
        return self.completion_mask.sum(-1)

    def select(self, idx: torch.Tensor | Sequence[int] | slice, trim: bool = True) -> "Samples":
        """The sub-batch at rows ``idx`` (indices or a slice); ``trim``: cut the completion columns to its longest
        completion (at least one), so a minibatch of short answers does not carry the batch's padding."""
        if not isinstance(idx, slice):
            idx = torch.as_tensor(idx, dtype=torch.long, device=self.completion_ids.device)
            texts = [self.texts[int(i)] for i in idx]
        else:
            texts = self.texts[idx]
        cm = self.completion_mask[idx]
        T = max(int(cm.sum(-1).max()), 1) if trim and cm.numel() else cm.shape[1]
        return Samples(self.prompt_ids[idx], self.prompt_mask[idx], self.completion_ids[idx, :T], cm[:, :T],
                       self.logprobs[idx, :T], texts)
