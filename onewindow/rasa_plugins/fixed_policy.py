"""FixedPolicy: a Rasa policy with fixed behaviour, which insists on one action or leaves the choice to the others."""

from __future__ import annotations

from typing import Any, List, Optional

from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.engine.storage.resource import Resource
from rasa.shared.core.domain import Domain
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker


class FixedPolicy(Policy):
    """Subclasses say which action they insist on (`next_action`); nothing is learnt from the stories.

    Its predictions have full confidence and are marked as not depending on user input, so that they
    also win over a form's happy path (RulePolicy predicts an active form that way, and such
    predictions are compared only among themselves); the priority breaks ties between such policies.
    """

    def next_action(self, tracker: DialogueStateTracker) -> Optional[str]:
        """The action this policy insists on, or None to leave the choice to the other policies."""
        raise NotImplementedError

    def train(self, training_trackers: List[TrackerWithCachedStates], domain: Domain, **kwargs: Any) -> Resource:
        """Nothing to learn: the behaviour is fixed."""
        return self._resource

    def predict_action_probabilities(
        self, tracker: DialogueStateTracker, domain: Domain, rule_only_data: Optional[dict] = None, **kwargs: Any
    ) -> PolicyPrediction:
        probabilities = self._default_predictions(domain)
        action = self.next_action(tracker)
        if action is None:
            return self._prediction(probabilities)
        probabilities[domain.index_for_action(action)] = 1.0
        return self._prediction(probabilities, is_no_user_prediction=True)
