"""Fault injection: every fault a pod can have, under every executor; nothing hangs, nothing outlives its run."""
