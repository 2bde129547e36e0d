"""Proposers turn a task (and, for an LLM, parents and feedback) into candidate sources."""

from evolution.proposers.base import Proposal, ProposalRequest, Proposer

__all__ = ["Proposal", "ProposalRequest", "Proposer"]
