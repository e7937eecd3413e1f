"""The fault campaign (issue 13, Jepsen's way): random faults, then check the history.

    cluster     redis-server (AOF always) behind a freezable proxy, the sandbox, a callback
                receiver, workers it can kill, pause, replace or start under faketime
    proxy       the TCP proxy that freezes (bytes and FINs held: a half-open network)
    nemesis     a seeded random fault every few seconds, held, then healed
    producers   threads that keep enqueueing orders, one account each
    checker     the history against the promises: final, one create, POSTs, events, callbacks,
                no unexpected worker death
    report      the seed, faults by kind with recovery times, figures, checks (text or JSON)
    run         one campaign from start to report; `__main__` is its command line

`make chaos` (DURATION=600, SEED=random) runs `python -m sandbox.campaign`.
"""

from sandbox.campaign.run import Options, run_campaign

__all__ = ["Options", "run_campaign"]
