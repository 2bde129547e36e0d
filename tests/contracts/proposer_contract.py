"""The Proposer contract (evolution/proposers/base.py) as a reusable test class.

Subclass it in a ``Test...`` class and provide two fixtures: ``proposer`` (ready to answer
``translate`` for ``task``) and ``task``. ``test_proposer_contract.py`` runs it on every
implementation: rules, seeds, LLM; a new proposer joins that list.
"""

from __future__ import annotations

import ast
import threading

from evolution.proposers.base import Proposal, ProposalBatch, ProposalRequest, Proposer


class ProposerContract:
    def test_is_a_proposer_with_a_name(self, proposer):
        assert isinstance(proposer, Proposer)
        assert isinstance(proposer.name, str) and proposer.name

    def test_translate_gives_complete_candidate_modules(self, proposer, task):
        batch = proposer.propose(ProposalRequest(task=task, operator="translate", n=1))
        assert isinstance(batch, ProposalBatch)
        assert batch.proposals, batch.notes
        for proposal in batch.proposals:
            assert isinstance(proposal, Proposal)
            assert proposal.operator == "translate"
            assert proposal.proposer == proposer.name or proposal.proposer.startswith(proposer.name + ":")
            tree = ast.parse(proposal.source)
            assert any(isinstance(n, ast.ClassDef) and n.name == "ModelNew" for n in tree.body)
            for name, choices in proposal.params_space.items():
                assert proposal.default_params.get(name, choices[0]) in choices

    def test_an_operator_it_lacks_is_an_empty_batch_with_a_note(self, proposer, task):
        batch = proposer.propose(ProposalRequest(task=task, operator="no-such-operator"))
        assert batch.proposals == [] and batch.notes

    def test_safe_to_call_from_several_threads(self, proposer, task):
        batches: list[ProposalBatch] = []
        errors: list[BaseException] = []

        def work() -> None:
            try:
                batches.append(proposer.propose(ProposalRequest(task=task, operator="translate")))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [], f"{len(errors)} of 4 threads raised: {errors!r}"
        assert len(batches) == 4, f"{len(batches)} of 4 threads returned a batch"
        empty = [b.notes for b in batches if not b.proposals]
        assert not empty, f"{len(empty)} of 4 batches empty; their notes: {empty}"
