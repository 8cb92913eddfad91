"""The executor loop of ``specs/build.md``: stages by levels, steps by kind, the cache first.

:class:`Executor` runs one :class:`~declarun.dockerfile.BuildPlan`:

* the meta ``ARG`` lines are shown as steps, as dockerd shows them; then the levels of the
  plan run one after the other, the stages of a level concurrently (stages the target does
  not need are not built at all);
* a stage starts from its base -- an image (pulled if needed, :mod:`.bases`), the result of
  an earlier stage, or ``scratch`` -- and is evaluated by the frontend on the base's config;
* each step's cache key is the frontend's (parent key, instruction after substitution, the
  sources digest of a ``COPY``/``ADD``, the args a ``RUN`` sees, the platform). Unless
  ``nocache``, a key found in the build cache reuses its image (`` ---> Using cache``);
  then the ``cachefrom`` images are tried, matched by their history as dockerd matches
  them. Otherwise the step runs (:mod:`.steps`), its result is registered as an image
  (:mod:`.stepimage`) and remembered under its key.

Every image made is registered before the next step uses it; a step interrupted (failure,
or the client going away) registers nothing, and what it wrote is only referenced by the
build's lease, which the service drops at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from declarun.daemon.builder.environment import BuildEnv, BuildRequestState
from declarun.daemon.builder.output import BuildOutput, StageSequencer, short_id
from declarun.daemon.builder.stepimage import StepImage, scratch_image, step_image
from declarun.daemon.builder.steps import StepRunner
from declarun.daemon.builder.threads import blocking
from declarun.dockerfile import BuildPlan, StageEvaluation, evaluate_stage
from declarun.dockerfile.cachekey import SCRATCH_PARENT

__all__ = ["Executor", "StageResult", "step_numbers"]


@dataclass(frozen=True)
class StageResult:
    """A built stage: its last image, the cache key of its last step, its evaluation."""

    image: StepImage
    key: str
    evaluation: StageEvaluation


def step_numbers(plan: BuildPlan) -> tuple[int, dict[int, int]]:
    """The total dockerd shows in ``Step N/M``, and the number of each needed stage's FROM.

    The meta ``ARG`` lines come first; then the needed stages in Dockerfile order, each its
    ``FROM`` and its instructions (base-image ``ONBUILD`` triggers are not counted).
    """
    number = len(plan.dockerfile.meta_args)
    first: dict[int, int] = {}
    for index in sorted(plan.order):
        first[index] = number + 1
        number += 1 + len(plan.node(index).stage.instructions)
    return number, first


class Executor:
    """Runs one build plan (see the module docstring)."""

    def __init__(self, env: BuildEnv, state: BuildRequestState, plan: BuildPlan) -> None:
        self.env = env
        self.state = state
        self.plan = plan
        self.results: dict[int, StageResult] = {}
        self.total, self._first = step_numbers(plan)

    async def run(self) -> StageResult:
        """Build the target; returns its result."""
        output = self.state.output
        for number, arg in enumerate(self.plan.dockerfile.meta_args, start=1):
            output.step(number, self.total, arg.original)
        for level in self.plan.levels:
            order = sorted(level)
            sequencer = StageSequencer(output, order)
            await _all_or_nothing([self._stage(index, sequencer) for index in order])
        return self.results[self.plan.target]

    def stage_result(self, index: int) -> StageResult:
        """The result of a stage built earlier (``FROM <stage>``)."""
        result = self.results.get(index)
        if result is None:
            raise RuntimeError(f"stage {index} was not built before it was used")
        return result

    def stage_reference(self, text: str) -> int | None:
        """The stage a ``--from``/``from=`` value names, None for an image."""
        return self.plan.stage_reference(text)

    def stage_image(self, index: int) -> StepImage:
        """The last image of a stage built earlier (``COPY --from``, ``from=``)."""
        return self.stage_result(index).image

    async def _base(
        self, index: int, output: BuildOutput
    ) -> tuple[StepImage, str, dict[str, Any] | None]:
        node = self.plan.node(index)
        if node.base_stage is not None:
            built = self.stage_result(node.base_stage)
            return built.image, built.key, built.image.document.get("config")
        if node.base_image is None:
            return scratch_image(self.state.image_platform(node.platform)), SCRATCH_PARENT, None
        image = await self.state.bases.get(node.base_image, output)
        base = await blocking(step_image, self.env.images, image)
        config = base.document.get("config")
        return base, image.id, config if isinstance(config, dict) else None

    async def _stage(self, index: int, sequencer: StageSequencer) -> None:
        output = sequencer.stage_output(index)
        try:
            await self._stage_steps(index, output)
        finally:
            sequencer.finished(index)

    async def _stage_steps(self, index: int, output: BuildOutput) -> None:
        state = dataclasses.replace(self.state, output=output)
        steps = StepRunner(self.env, state, self)
        node = self.plan.node(index)
        number = self._first[index]
        output.step(number, self.total, node.stage.from_.original)
        image, key, config = await self._base(index, output)
        evaluation = evaluate_stage(self.plan, index, config)
        if evaluation.triggers:
            count = len(evaluation.triggers)
            output.stream(f"# Executing {count} build trigger{'s' if count > 1 else ''}\n")
        triggers_pending = True
        for step in evaluation.steps:
            if not step.onbuild:
                if triggers_pending:
                    output.arrow(short_id(image.id))
                    triggers_pending = False
                number += 1
                output.step(number, self.total, step.instruction.original)
            image, key = await steps.run(image, key, step)
            if not step.onbuild:
                output.arrow(short_id(image.id))
        if triggers_pending:
            output.arrow(short_id(image.id))
        if image.id:
            output.aux_id(image.id)
        self.results[index] = StageResult(image, key, evaluation)


async def _all_or_nothing(coroutines: Sequence[Any]) -> None:
    """Run concurrently; the first failure cancels the others (and waits for them)."""
    if len(coroutines) == 1:
        await coroutines[0]
        return
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
