"""EnerInfer's controllers serving a queue of requests, as a discrete-event simulation (``simpy``).

Requests arrive as a Poisson stream and wait in a first-in-first-out queue for the device, which serves
one at a time (batch 1): a prefill, then a decode whose context grows token by token. The time to first
token (TTFT) of a request counts its waiting time in the queue and its prefill. The device runs the true
physics of :mod:`llmtheory.enerinfer` (leakage that grows with die temperature, closing the thermal-leakage
loop; growing context; cache effects), which the predictor does not share.

Policies (:data:`POLICIES`):

* ``performance``: NPU and DDR at their maximum levels;
* ``default governor``, the one a phone runs: devfreq-style governors polled every 100 ms, capped by the
  step-wise thermal governor (one level down per second while the shell is above its trip point, one up per
  second while it is 1 °C below). ``simple_ondemand`` on the NPU is driven by the load, the busy share of
  its polling window (a job in flight counts as busy, memory stalls included, as devfreq's busy time does):
  above 90% it jumps to the maximum, below it scales the frequency by load / 87.5%, so idle windows bring it
  to its lowest level; a bandwidth-monitor vote sets the DDR level;
* ``static slack``: one lower setting, the predictor's energy-optimal choice for the first request, kept for
  the whole stream (configuration slack with neither feedback nor thermal prediction: a control);
* ``EnerInfer (no thermal)``: the predictor and the ranking-driven feedback, always energy-optimised;
* ``EnerInfer``: the same plus the limited-horizon thermal predictor;
* ``oracle``: EnerInfer's logic with the true device model, interference and die temperature.

Between requests every policy but ``performance`` leaves the NPU and DDR to the default governor, which
idles them at their lowest levels after one poll; ``performance`` idles at the maximum levels. The device's
energy counts idle power at those levels (:func:`llmtheory.enerinfer.idle_power`), so "device tokens/J"
is the whole-device efficiency; "tokens/J" counts the energy spent serving only.

No policy sees the future: the expected response length is a running mean of the responses served so far
(a prior of 200 tokens counted as one response), not the stream's realised mean.

The EnerInfer policies and the oracle are queue-aware (our reconstruction; the abstract does not say how
EnerInfer treats a queue): a prefill gets the TTFT budget its request has left after waiting; while
another request waits the decode runs at the maximum levels, unless the request is served in the
thermally constrained mode, whose forecast covers the waiting requests too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import simpy

from . import enerinfer as ei
from .claims import Estimate
from .seeding import make_rng

# ----------------------------------------------------------------------------------------------------
# Requests
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestTrace:
    """An open-loop stream of requests (arrival times fixed in advance) and a runtime-interference schedule,
    shared by every policy."""

    arrivals: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    interference_times: np.ndarray
    interference_levels: np.ndarray

    def interference(self, t: float) -> float:
        return float(self.interference_levels[np.searchsorted(self.interference_times, t, side="right") - 1])

    def start(self, env: simpy.Environment, queue: simpy.Store, requests: list[Request]) -> None:
        """Register the arrival process: each request enters the queue at its arrival time."""

        def arrivals():
            for a, p, o in zip(self.arrivals, self.prompt_tokens, self.output_tokens, strict=True):
                yield env.timeout(float(a) - env.now)
                requests.append(Request(float(a), int(p), int(o)))
                yield queue.put(requests[-1])

        env.process(arrivals())


def interference_schedule(
    rng: np.random.Generator, duration_s: float, levels: tuple[float, ...], mean_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-constant memory interference: switch times (exponential gaps of mean ``mean_s``) and the level
    after each switch, drawn uniformly from ``levels``; no interference at the start."""
    n_switches = int(3 * duration_s / mean_s) + 3
    times = np.concatenate([[0.0], np.cumsum(rng.exponential(mean_s, n_switches))])
    drawn = rng.choice(np.asarray(levels), len(times))
    drawn[0] = 1.0
    return times, drawn


def make_trace(
    rng: np.random.Generator, duration_s: float, rate_per_s: float, mean_prompt: int = 128,
    mean_output: int = 200, interference_levels: tuple[float, ...] = (1.0, 1.3, 1.6),
    interference_mean_s: float = 60.0,
) -> RequestTrace:  # fmt: skip
    """Poisson arrivals, log-normal prompt and response lengths, piecewise-constant memory interference."""
    n = rng.poisson(rate_per_s * duration_s)
    arrivals = np.sort(rng.uniform(0, duration_s, n))
    prompt = np.clip(rng.lognormal(np.log(mean_prompt), 0.5, n), 32, 1024).astype(int)
    output = np.clip(rng.lognormal(np.log(mean_output), 0.5, n), 16, 1024).astype(int)
    times, levels = interference_schedule(rng, duration_s, interference_levels, interference_mean_s)
    return RequestTrace(arrivals, prompt, output, times, levels)


@dataclass(frozen=True)
class ClosedLoopTrace:
    """A closed-loop workload: each of ``users`` people sends a request, waits for the whole response, thinks
    for ``think_s[user, turn]`` seconds and sends the next, until ``duration_s``. Arrivals depend on how fast
    the device answered, so a slower policy also receives fewer requests. The think times and lengths are
    drawn in advance, so every policy meets the same users (common random numbers)."""

    duration_s: float
    think_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    interference_times: np.ndarray
    interference_levels: np.ndarray

    interference = RequestTrace.interference

    def start(self, env: simpy.Environment, queue: simpy.Store, requests: list[Request]) -> None:
        """Register one process per user: think (the first think staggers the users' starts), send, wait for the
        response to end, and again; a user sends nothing after ``duration_s`` or once its turns run out."""

        def user(u: int):
            for think, p, o in zip(self.think_s[u], self.prompt_tokens[u], self.output_tokens[u], strict=True):
                yield env.timeout(float(think))
                if env.now >= self.duration_s:
                    return
                requests.append(Request(env.now, int(p), int(o), served=env.event()))
                yield queue.put(requests[-1])
                yield requests[-1].served

        for u in range(len(self.think_s)):
            env.process(user(u))


def make_closed_trace(
    rng: np.random.Generator, duration_s: float, users: int, think_mean_s: float, mean_prompt: int = 128,
    mean_output: int = 200, interference_levels: tuple[float, ...] = (1.0, 1.3, 1.6),
    interference_mean_s: float = 60.0,
) -> ClosedLoopTrace:  # fmt: skip
    """``users`` people with exponential think times of mean ``think_mean_s`` and the lengths and interference
    of :func:`make_trace`. Each user gets enough turns to outlast ``duration_s`` even if every response were
    instant (turns = 3 × duration / think + 10; running out is rarer than 1 in 10⁶ at the chapter's sizes)."""
    turns = int(3 * duration_s / think_mean_s) + 10
    think = rng.exponential(think_mean_s, (users, turns))
    prompt = np.clip(rng.lognormal(np.log(mean_prompt), 0.5, (users, turns)), 32, 1024).astype(int)
    output = np.clip(rng.lognormal(np.log(mean_output), 0.5, (users, turns)), 16, 1024).astype(int)
    times, levels = interference_schedule(rng, duration_s, interference_levels, interference_mean_s)
    return ClosedLoopTrace(duration_s, think, prompt, output, times, levels)


def think_time_for_load(
    platform: ei.Platform, engine: ei.Engine, model: ei.ModelShape, load: float, users: int = 1
) -> float:
    """The mean think time that gives ``users`` closed-loop users the offered load ``load`` at the maximum
    levels, ignoring queueing: each user cycles through a service ``S`` and a think ``Z``, so the device is busy
    a share ``users · S / (S + Z)``, and ``Z = S (users − ρ) / ρ`` (the interactive response-time law with no
    waiting)."""
    service = utilisation(platform, engine, model, 1.0)  # E[S] at the maximum levels
    return service * (users - load) / load


def utilisation(
    platform: ei.Platform, engine: ei.Engine, model: ei.ModelShape, rate_per_s: float, mean_prompt: int = 128,
    mean_output: int = 200, interference: float = 1.3,
) -> float:  # fmt: skip
    """Offered load ρ = λ·E[service] of a :func:`make_trace` stream at the maximum levels: the share of time
    the device would be busy at full speed (ρ ≥ 1: a saturated queue), at the interference's mean level
    (:func:`make_trace`'s levels 1, 1.3, 1.6 are equally likely). The log-normal lengths (σ = 0.5) have mean
    ``e^{σ²/2}`` × median."""
    inflate = np.exp(0.5**2 / 2)
    prefill = ei.prefill_phase(platform, engine, model, int(mean_prompt * inflate), interference)["time"][-1, -1]
    per_token = ei.decode_phase(platform, engine, model, mean_prompt * inflate, 1.0, interference)["time"][-1, -1]
    return float(rate_per_s * (prefill + mean_output * inflate * per_token))


@dataclass
class Request:
    arrival: float
    prompt: int
    output: int
    start: float = np.nan
    first_token: float = np.nan
    done: float = np.nan
    thermal_mode: bool = False
    served: simpy.Event | None = None  # a closed-loop user waits on it for the end of the response


# ----------------------------------------------------------------------------------------------------
# The device: temperatures and energy
# ----------------------------------------------------------------------------------------------------


@dataclass
class Device:
    """Die and shell temperatures (eq. enerinfer-eq-rc) and the energy of one run."""

    platform: ei.Platform
    temps: np.ndarray = field(init=False)
    clock: float = 0.0
    busy_energy: float = 0.0
    idle_energy: float = 0.0
    busy_s: float = 0.0

    def __post_init__(self):
        self.temps = np.full(2, self.platform.t_ambient)
        self.peak_shell = self.platform.t_ambient

    @property
    def die_c(self) -> float:
        return float(self.temps[0])

    @property
    def shell_c(self) -> float:
        return float(self.temps[1])

    def run(self, power_w: float, seconds: float) -> None:
        self.temps = ei.thermal_step(self.platform, self.temps, power_w, seconds)
        self.clock, self.busy_s = self.clock + seconds, self.busy_s + seconds
        self.busy_energy += power_w * seconds
        self.peak_shell = max(self.peak_shell, self.shell_c)

    def idle_until(self, t: float, levels: tuple[tuple[int, int], tuple[int, int]], step_s: float = 10.0) -> None:
        """Idle until ``t``: the first poll (0.1 s) at ``levels[0]``, the rest at ``levels[1]``, drawing
        :func:`llmtheory.enerinfer.idle_power` at those levels and the die's temperature."""
        start = self.clock
        while self.clock < t - 1e-12:
            first_poll = self.clock < start + DefaultGovernor.poll_s
            config = levels[0] if first_poll else levels[1]
            end = min(t, start + DefaultGovernor.poll_s) if first_poll else min(t, self.clock + step_s)
            dt = end - self.clock
            power = float(ei.idle_power(self.platform, self.die_c)[config])
            self.temps = ei.thermal_step(self.platform, self.temps, power, dt)
            self.clock, self.idle_energy = end, self.idle_energy + power * dt


@dataclass
class Situation:
    """What a policy can see: the device, the queue and the clock (and, for the oracle, the truth)."""

    platform: ei.Platform
    engine: ei.Engine
    model: ei.ModelShape
    qoe: ei.QoE
    device: Device
    env: simpy.Environment
    queue: simpy.Store
    trace: RequestTrace | ClosedLoopTrace
    rng: np.random.Generator
    predictor: object = None

    @property
    def top(self) -> tuple[int, int]:
        return len(self.platform.npu_levels) - 1, len(self.platform.ddr_gbs) - 1

    def kappa(self) -> float:
        return self.trace.interference(self.env.now)

    def true_decode(self, context: float, n_tokens: float = 1.0) -> dict:
        return ei.decode_phase(
            self.platform, self.engine, self.model, context, n_tokens, self.kappa(), self.device.die_c, points=2
        )

    def true_prefill(self, prompt: int) -> dict:
        return ei.prefill_phase(self.platform, self.engine, self.model, prompt, self.kappa(), self.device.die_c)


# ----------------------------------------------------------------------------------------------------
# Policies
# ----------------------------------------------------------------------------------------------------


class Performance:
    """NPU and DDR at their maximum levels."""

    name = "performance"
    step_s = 1.0

    def begin(self, s: Situation, request: Request) -> None:
        pass

    def prefill_config(self, s: Situation, request: Request) -> tuple[int, int]:
        return s.top

    def decode_config(self, s: Situation, request: Request, done: float) -> tuple[tuple[int, int], float]:
        """The configuration for the next tokens, and how many tokens it holds for at most."""
        return s.top, np.inf

    def observe(self, s: Situation, truth: dict, config: tuple[int, int], seconds: float) -> None:
        pass

    def idle_levels(self, s: Situation) -> tuple[tuple[int, int], tuple[int, int]]:
        """The levels while idle: during the first poll, then after it."""
        return s.top, s.top

    def learn(self, request: Request) -> None:
        """Called once a request is served: what the policy may learn from the past."""


class DefaultGovernor(Performance):
    """devfreq-style governors under the step-wise thermal governor (see the module docstring)."""

    name = "default governor"
    poll_s = 0.1  # devfreq polling interval
    step_s = poll_s  # simulated in steps of one poll while levels move, of 1 s once they have settled
    up_threshold = 0.90  # simple_ondemand: load above which the NPU goes to its maximum
    down_differential = 0.05  # simple_ondemand: below the threshold, f ← f·load / (up − down/2)
    io_fraction = 0.50  # bandwidth monitor: vote for a DDR level whose peak is twice the measured traffic

    def __init__(self):
        self.level, self.cap, self.last_busy, self.last_thermal = None, None, 0.0, 0.0
        self.window_start, self.window_busy = 0.0, 0.0

    def begin(self, s: Situation, request: Request) -> None:
        if self.level is None:
            self.level, self.cap = [0, 0], list(s.top)
        if s.env.now - self.last_busy >= self.poll_s:  # the polls of the idle gap saw load 0: lowest levels
            self.level, self.step_s = [0, 0], self.poll_s
            self.window_start, self.window_busy = s.env.now, 0.0
        self._thermal(s)

    def idle_levels(self, s: Situation) -> tuple[tuple[int, int], tuple[int, int]]:
        return ((0, 0) if self.level is None else self._config()), (0, 0)

    def _config(self) -> tuple[int, int]:
        return min(self.level[0], self.cap[0]), min(self.level[1], self.cap[1])

    def prefill_config(self, s: Situation, request: Request) -> tuple[int, int]:
        return self._config()

    def decode_config(self, s: Situation, request: Request, done: float) -> tuple[tuple[int, int], float]:
        return self._config(), np.inf

    def npu_level(self, s: Situation, load: float) -> int:
        """simple_ondemand: the maximum above the threshold, else the lowest level at or above
        ``f·load / (up_threshold − down_differential/2)``."""
        if load > self.up_threshold:
            return s.top[0]
        target = s.platform.npu_levels[self.level[0]] * load / (self.up_threshold - self.down_differential / 2)
        return int(min(np.searchsorted(np.asarray(s.platform.npu_levels), target - 1e-12), s.top[0]))

    def observe(self, s: Situation, truth: dict, config: tuple[int, int], seconds: float) -> None:
        now = s.env.now + seconds
        self.window_busy += seconds
        if now - self.window_start >= self.poll_s - 1e-12:  # a poll: the load is the window's busy share
            self.level[0] = self.npu_level(s, self.window_busy / (now - self.window_start))
            self.window_start, self.window_busy = now, 0.0
        # bandwidth monitor: it sees the whole bus (other apps too) and votes for the lowest DDR level whose peak
        # covers traffic / io_fraction, so a bus busier than io_fraction of its peak climbs a level per poll
        vote = int(np.searchsorted(s.platform.ddr_gbs, float(truth["bus traffic"][config]) / self.io_fraction))
        self.level[1] = min(vote, s.top[1])
        self.last_busy = now
        self._thermal(s, now)
        # between polls that change nothing the result is the same, so settled levels are simulated coarser
        self.step_s = self.poll_s if self._config() != config else 1.0

    def _thermal(self, s: Situation, now: float | None = None) -> None:
        """The step-wise thermal governor, polled once a second, with 1 °C of hysteresis."""
        now = s.env.now if now is None else now
        steps = int(now - self.last_thermal)
        if steps < 1:
            return
        self.last_thermal += steps
        if s.device.shell_c > s.platform.t_limit:
            self.cap = [max(c - steps, 0) for c in self.cap]
        elif s.device.shell_c < s.platform.t_limit - 1:
            self.cap = [min(c + steps, t) for c, t in zip(self.cap, s.top, strict=True)]


class EnerInferPolicy(Performance):
    """EnerInfer's three parts on a queue (or the oracle: the same logic on the true device)."""

    margin = 1.05  # QoE margin on predicted times
    probe_tokens = 4
    horizon_s = 30.0

    def __init__(self, thermal: bool = True, oracle: bool = False):
        self.thermal, self.oracle = thermal, oracle
        self.name = "oracle" if oracle else "EnerInfer" if thermal else "EnerInfer (no thermal)"
        self.kappa_hat, self.expected_output, self.served = 1.0, self.prior_output, 0
        self.decode, self.prefill, self.probes = None, None, []

    prior_output = 200.0  # expected response length before any response was served

    def idle_levels(self, s: Situation) -> tuple[tuple[int, int], tuple[int, int]]:
        return (0, 0), (0, 0)  # between requests the default governor idles the device at its lowest levels

    def learn(self, request: Request) -> None:
        """The running mean of the responses served so far, the prior counted as one response."""
        self.served += 1
        self.expected_output += (request.output - self.expected_output) / (self.served + 1)

    def begin(self, s: Situation, request: Request) -> None:
        limit = 1 / s.qoe.min_tokens_per_s
        margin = 1.0 if self.oracle else self.margin
        self.probes = []
        if self.oracle:
            pred_dec = s.true_decode(request.prompt, self.expected_output)
            pred_pre = s.true_prefill(request.prompt)
            self.decode = ei.best_config(pred_dec["time"], pred_dec["power"], limit) or s.top
        else:

            def predict_decode(kappa):
                return s.predictor.predict(s.model, "decode", request.prompt, kappa)

            def measured_time(config):  # a few tokens timed at ``config``, with 2% timing noise
                return float(s.true_decode(request.prompt)["time"][config] * np.exp(0.02 * s.rng.standard_normal()))

            self.decode, self.kappa_hat, self.probes = ei.feedback_select(
                predict_decode(self.kappa_hat), measured_time, limit, self.kappa_hat, predict_decode
            )
            pred_dec = predict_decode(self.kappa_hat)
            pred_pre = s.predictor.predict(s.model, "prefill", request.prompt, self.kappa_hat)
        # the TTFT budget this request has left after waiting in the queue
        budget = s.qoe.max_ttft_s - (s.env.now - request.arrival)
        fastest = tuple(int(i) for i in np.unravel_index(np.argmin(pred_pre["time"]), pred_pre["time"].shape))
        self.prefill = ei.best_config(pred_pre["time"], pred_pre["power"], budget / margin) or fastest
        if self.thermal:  # forecast over this request and those already waiting behind it
            per_request = pred_pre["time"][self.prefill] + self.expected_output * pred_dec["time"][self.decode]
            busy_s = float(per_request * (1 + len(s.queue.items)))
            power = float(pred_dec["power"][self.decode])
            if (
                ei.forecast_peak_shell(s.platform, s.device.temps, power, busy_s, self.horizon_s)
                >= s.platform.t_limit - 0.5
            ):
                request.thermal_mode = True
                self.decode = ei.best_config(pred_dec["time"], pred_dec["power"], limit / margin, "power") or s.top
                self.prefill = (
                    ei.best_config(pred_pre["time"], pred_pre["power"], budget / margin, "power") or self.prefill
                )

    def prefill_config(self, s: Situation, request: Request) -> tuple[int, int]:
        return self.prefill

    def decode_config(self, s: Situation, request: Request, done: float) -> tuple[tuple[int, int], float]:
        probe = int(done // self.probe_tokens)
        if probe < len(self.probes):  # the feedback loop's probe tokens, at the probed configurations
            return self.probes[probe], (probe + 1) * self.probe_tokens - done
        if s.queue.items and not request.thermal_mode:  # someone waits: finish as fast as the device can
            return s.top, np.inf
        return self.decode, np.inf


class StaticSlack(EnerInferPolicy):
    """Control: the predictor's energy-optimal setting for the first request, kept for every request."""

    def __init__(self):
        super().__init__(thermal=False)
        self.name = "static slack"

    def begin(self, s: Situation, request: Request) -> None:
        if self.decode is None:
            limit = 1 / s.qoe.min_tokens_per_s
            pred_dec = s.predictor.predict(s.model, "decode", request.prompt, 1.0)
            pred_pre = s.predictor.predict(s.model, "prefill", request.prompt, 1.0)
            self.decode = ei.best_config(pred_dec["time"], pred_dec["power"], limit / self.margin) or s.top
            self.prefill = ei.best_config(pred_pre["time"], pred_pre["power"], s.qoe.max_ttft_s / self.margin) or s.top

    def decode_config(self, s: Situation, request: Request, done: float) -> tuple[tuple[int, int], float]:
        return self.decode, np.inf


POLICIES: tuple[str, ...] = (
    "performance", "default governor", "static slack", "EnerInfer (no thermal)", "EnerInfer", "oracle",
)  # fmt: skip


def make_policy(name: str):
    """A fresh policy object by name (see :data:`POLICIES`)."""
    makers = {
        "performance": Performance,
        "default governor": DefaultGovernor,
        "static slack": StaticSlack,
        "EnerInfer (no thermal)": lambda: EnerInferPolicy(thermal=False),
        "EnerInfer": EnerInferPolicy,
        "oracle": lambda: EnerInferPolicy(oracle=True),
    }
    if name not in makers:
        from .params import ParameterError

        raise ParameterError(f"policy={name!r} is not valid; choose one of: {', '.join(POLICIES)}")
    return makers[name]()


# ----------------------------------------------------------------------------------------------------
# The queue
# ----------------------------------------------------------------------------------------------------


def simulate_queue(
    policy_name: str, platform: ei.Platform, engine: ei.Engine, model: ei.ModelShape,
    trace: RequestTrace | ClosedLoopTrace, predictor, qoe: ei.QoE, rng: np.random.Generator, detail: bool = False,
) -> dict | tuple[dict, list[Request]]:  # fmt: skip
    """Serve the trace's requests first-in-first-out with one policy; return energy, QoE and heat (and,
    with ``detail``, the served requests with their times).

    simpy runs the trace's arrival processes (``trace.start``: open-loop arrivals at fixed times, or
    closed-loop users who wait for each response) that put requests into a ``Store``, and a server that
    takes the oldest, idles the device until then, and runs its prefill and decode in steps of the
    policy's polling interval (the policy sees the queue and the temperatures between steps). The TTFT is
    first token − arrival, waiting included."""
    env = simpy.Environment()
    queue = simpy.Store(env)
    device = Device(platform)
    policy = make_policy(policy_name)
    s = Situation(platform, engine, model, qoe, device, env, queue, trace, rng, predictor)
    requests: list[Request] = []

    def server():
        while True:
            request = yield queue.get()
            device.idle_until(env.now, policy.idle_levels(s))
            request.start = env.now
            policy.begin(s, request)
            remaining = 1.0  # fraction of the prefill left
            while remaining > 1e-9:
                config, truth = policy.prefill_config(s, request), s.true_prefill(request.prompt)
                seconds = min(policy.step_s, remaining * float(truth["time"][config]))
                device.run(float(truth["power"][config]), seconds)
                policy.observe(s, truth, config, seconds)
                remaining -= seconds / float(truth["time"][config])
                yield env.timeout(seconds)
            request.first_token, done = env.now, 0.0
            while done < request.output - 1e-9:
                config, hold = policy.decode_config(s, request, done)
                truth = s.true_decode(request.prompt + done)  # the context grows token by token
                per_token = float(truth["time"][config])
                tokens = min(request.output - done, hold, max(1.0, policy.step_s / per_token))
                device.run(float(truth["power"][config]), tokens * per_token)
                policy.observe(s, truth, config, tokens * per_token)
                done += tokens
                yield env.timeout(tokens * per_token)
            request.done = env.now
            policy.learn(request)
            if request.served is not None:
                request.served.succeed()

    trace.start(env, queue, requests)
    env.process(server())
    env.run()
    summary = summarise(policy_name, requests, device, qoe)
    return (summary, requests) if detail else summary


def summarise(policy: str, requests: list[Request], device: Device, qoe: ei.QoE) -> dict:
    """One run's metrics: inference tokens/J (busy energy), whole-device tokens/J (idle included), TTFT
    (waiting + prefill) and decode-rate violations, waiting time, utilisation and the peak shell."""
    n = max(len(requests), 1)
    ttft = np.array([r.first_token - r.arrival for r in requests])
    rate = np.array([r.output / (r.done - r.first_token) for r in requests])
    wait = np.array([r.start - r.arrival for r in requests])
    slow_start, slow_decode = ttft > qoe.max_ttft_s + 1e-9, rate < qoe.min_tokens_per_s * (1 - 1e-9)
    tokens = sum(r.output for r in requests)
    return {
        "policy": policy,
        "tokens/J": tokens / device.busy_energy if device.busy_energy > 0 else np.nan,
        "device tokens/J": tokens / (device.busy_energy + device.idle_energy) if tokens else np.nan,
        "QoE violations %": 100 * float(np.sum(slow_start | slow_decode)) / n,
        "TTFT violations %": 100 * float(np.sum(slow_start)) / n,
        "rate violations %": 100 * float(np.sum(slow_decode)) / n,
        "mean wait s": float(np.mean(wait)) if len(wait) else 0.0,
        "p95 TTFT s": float(np.percentile(ttft, 95)) if len(ttft) else 0.0,
        "utilisation": device.busy_s / device.clock if device.clock > 0 else 0.0,
        "peak shell °C": device.peak_shell,
        "thermal-mode requests %": 100 * float(np.mean([r.thermal_mode for r in requests])) if requests else 0.0,
        "requests": len(requests),
    }


def run_streams(
    platform: ei.Platform, engine: ei.Engine, model: ei.ModelShape, predictor, qoe: ei.QoE, workload,
    n_streams: int, seed: int, policies: tuple[str, ...] = POLICIES, scenario: str = "",
) -> pd.DataFrame:  # fmt: skip
    """Every policy on ``n_streams`` independent request streams (the same streams for every policy), each
    drawn by ``workload(rng)`` (e.g. :func:`make_trace` or :func:`make_closed_trace` with their sizes bound):
    one row per stream and policy, the columns of :func:`summarise` plus ``stream`` and ``scenario``."""
    rows = []
    for stream in range(n_streams):
        trace = workload(make_rng(seed, "trace", platform.name, scenario, stream))
        for policy in policies:
            rng = make_rng(seed, "stream", platform.name, scenario, policy, stream)
            result = simulate_queue(policy, platform, engine, model, trace, predictor, qoe, rng)
            rows.append(result | {"stream": stream, "scenario": scenario, "platform": platform.name,
                                  "ambient °C": platform.t_ambient})  # fmt: skip
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------
# Estimates with intervals over request streams, for the ledger
# ----------------------------------------------------------------------------------------------------


def paired_gain(runs: pd.DataFrame, policy: str, reference: str, column: str = "tokens/J") -> Estimate:
    """The mean over streams of ``policy``'s gain in ``column`` over ``reference`` on the same stream, in %,
    with its Student-t 95% interval."""
    table = runs.pivot_table(index=["scenario", "ambient °C", "stream"], columns="policy", values=column)
    return Estimate.mean_of(100 * (table[policy] / table[reference] - 1))


def paired_difference(runs: pd.DataFrame, policy: str, reference: str, column: str) -> Estimate:
    """The mean over streams of ``policy``'s ``column`` minus ``reference``'s on the same stream (95% t)."""
    table = runs.pivot_table(index=["scenario", "ambient °C", "stream"], columns="policy", values=column)
    return Estimate.mean_of(table[policy] - table[reference])
