"""The sequential engine: each run of a job keeps its own model and optimiser and steps in turn.

A single run is this engine with one member. With several members (a pack that cannot be
stacked, stacked.py) each member's step is exactly its single run's: the same operations in the
same order, and, through ``RandomStream``, its own stream of dropout masks seeded by its own seed.
So a member's numbers are its single run's — bit for bit on the CPU (tests/test_training_packed.py)
— whichever pack it is in and wherever in it. It works for every optimiser and with ``compile:
true`` (training and evaluation then use the compiled model).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch

from adamnoise.training.gradients import GradientAccumulator, UpdateTracker
from adamnoise.training.runtime import RandomStream, blame, offload


@dataclass
class Slot:
    """One member's model and optimiser."""

    model: torch.nn.Module
    loss_of: Any  # the model, or its compiled version
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    accumulator: GradientAccumulator
    update_tracker: UpdateTracker
    stream: RandomStream | None  # None: the process's own generator (a job of one run)

    @property
    def params(self) -> list[torch.nn.Parameter]:
        return self.accumulator.params


class SequentialEngine:
    """Members stepped one after the other (module docstring); the interface of trainer.py."""

    kind = "sequential"

    def __init__(self, configs, models, device, autocast, total_steps: int):
        from adamnoise.optim import build_optimizer
        from adamnoise.schedules import build_schedule

        self.device, self.autocast = device, autocast
        self.slots: list[Slot | None] = []
        for config, (model, stream) in zip(configs, models, strict=True):
            params = [p for p in model.parameters() if p.requires_grad]
            with blame("optimizer", (ValueError, TypeError)):
                # on CUDA plain Adam takes torch's fused kernel (optim/factory.py)
                optimizer = build_optimizer(
                    params, dict(config.optimizer), fused=device.type == "cuda"
                )
            optimizer.stats_on_device = True  # fetched with the step's one synchronisation
            with blame("schedule", (ValueError, TypeError)):
                schedule = build_schedule(dict(config.schedule), total_steps)
            model.train()  # evaluate() switches to eval mode and back
            loss_of = torch.compile(model) if config.training.compile else model
            self.slots.append(
                Slot(
                    model=model,
                    loss_of=loss_of,
                    optimizer=optimizer,
                    scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, schedule),
                    accumulator=GradientAccumulator(params),
                    update_tracker=UpdateTracker(params),
                    stream=stream if len(configs) > 1 else None,
                )
            )
        self.num_parameters = sum(p.numel() for p in models[0][0].parameters())
        fused = any(getattr(s.optimizer, "defaults", {}).get("fused") for s in self.slots)
        self.optimizer_kernel = "torch-fused" if fused else "adamnoise"
        self._no_clip = torch.zeros((), device=device)
        self._unknown_clip = torch.full((), float("nan"), device=device)

    def _stream(self, index: int):
        stream = self.slots[index].stream
        return stream if stream is not None else contextlib.nullcontext()

    def step(self, batches: dict[int, list[tuple[torch.Tensor, torch.Tensor]]]):
        """One optimiser step of each member in ``batches`` (index -> its micro-batches).

        Returns a ``[members, 5]`` device tensor (mean loss, mean micro-batch |G|^2, full-batch
        |G|^2, max-update, clip fraction) and each member's learning rate of the step.
        """
        rows, lrs = [], []
        for index, micro_batches in batches.items():
            slot = self.slots[index]
            with self._stream(index):
                slot.update_tracker.before()
                loss, small_sq, big_sq = slot.accumulator.run(
                    slot.loss_of, micro_batches, self.autocast
                )
                lrs.append(slot.optimizer.param_groups[0]["lr"])
                slot.optimizer.step()
                max_update = slot.update_tracker.after()
                slot.scheduler.step()
                slot.optimizer.zero_grad(set_to_none=True)
            rows.append(torch.stack([loss, small_sq, big_sq, max_update, self._clip(slot)]))
        return torch.stack(rows), lrs

    def _clip(self, slot: Slot) -> torch.Tensor:
        """Clip fraction of the optimiser's last step (adamnoise.optim's ``last_step_stats``):
        0 when no clipping is configured (an empty dict), NaN for an optimiser that does not say."""
        stats = getattr(slot.optimizer, "last_step_stats", None)
        if not isinstance(stats, dict):
            return self._unknown_clip
        value = stats.get("clip_fraction", self._no_clip)
        return value if torch.is_tensor(value) else torch.full((), value, device=self.device)

    # evaluation and the best weights

    def evaluator(self, index: int):
        """(module whose training flag evaluation switches, per-token loss function)."""
        slot = self.slots[index]
        return slot.model, slot.loss_of

    def best_weights(self, index: int) -> dict[str, torch.Tensor]:
        return {k: offload(v) for k, v in self.slots[index].model.state_dict().items()}

    def at_weights(self, index: int, weights: dict[str, torch.Tensor]):
        """(module, loss function, parameters) of member ``index`` set to ``weights``."""
        slot = self.slots[index]
        slot.model.load_state_dict(weights)
        return slot.model, slot.model, slot.params

    def random_stream(self, index: int):
        return self._stream(index)

    def drop(self, index: int) -> None:
        """Member ``index`` has stopped: its optimiser state and update buffer are freed."""
        self.slots[index].optimizer.state.clear()
        self.slots[index].update_tracker.release()

    # checkpoints

    def state_dict(self) -> dict[str, Any]:
        return {
            "members": [
                {
                    "model": slot.model.state_dict(),
                    "optimizer": slot.optimizer.state_dict(),
                    "scheduler": slot.scheduler.state_dict(),
                    "stream": None if slot.stream is None else slot.stream.state,
                }
                for slot in self.slots
            ]
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for slot, saved in zip(self.slots, state["members"], strict=True):
            slot.model.load_state_dict(saved["model"])
            slot.optimizer.load_state_dict(saved["optimizer"])
            slot.scheduler.load_state_dict(saved["scheduler"])
            if slot.stream is not None:
                slot.stream.state = saved["stream"]
