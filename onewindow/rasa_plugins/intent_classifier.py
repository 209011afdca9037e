"""TextIntentClassifier: intent classification as one small scikit-learn model on the raw text.

Word 1-2-gram and character 2-5-gram TF-IDF features (character n-grams forgive typos such
as "pasport"), then multinomial logistic regression. Rasa's own LogisticRegressionClassifier
learns the same kind of model but builds its input from Rasa's sparse feature objects, which
cost about 4 ms per message in scipy bookkeeping; here a message costs well under 1 ms.
The model is stored as JSON vocabularies and NumPy arrays (no pickle).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from scipy.sparse import csr_matrix, diags, hstack
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

TOKEN_PATTERN = r"(?u)\b\w+\b"


def _vectorizers(config: Dict[str, Any], vocabularies: Optional[List[Dict[str, int]]] = None) -> List[TfidfVectorizer]:
    word, char = vocabularies or (None, None)
    return [
        TfidfVectorizer(
            analyzer="word",
            ngram_range=tuple(config["word_ngrams"]),
            token_pattern=TOKEN_PATTERN,
            sublinear_tf=True,
            lowercase=True,
            vocabulary=word,
        ),
        TfidfVectorizer(
            analyzer="char_wb", ngram_range=tuple(config["char_ngrams"]), sublinear_tf=True, lowercase=True, vocabulary=char
        ),
    ]


def _idf_diagonals(vectorizers: List[TfidfVectorizer]) -> List[csr_matrix]:
    """Each vectorizer's idf weights as the diagonal matrix its `transform` multiplies by."""
    return [diags(v.idf_, offsets=0, shape=(len(v.idf_), len(v.idf_)), format="csr", dtype=np.float64) for v in vectorizers]


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class TextIntentClassifier(GraphComponent):
    MODEL_FILE = "intent_model.json"
    WEIGHTS_FILE = "intent_weights.npz"

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {
            "C": 10.0,
            "max_iter": 3000,
            "class_weight": "balanced",
            "word_ngrams": [1, 2],
            "char_ngrams": [2, 5],
            "ranking_length": 10,
        }

    def __init__(self, config: Dict[str, Any], storage: ModelStorage, resource: Resource) -> None:
        self.config = {**self.get_default_config(), **config}
        self._storage = storage
        self._resource = resource
        self.vectorizers: List[TfidfVectorizer] = []
        self.idf_diagonals: List[csr_matrix] = []
        self.classes: List[str] = []
        self.weights = np.zeros((0, 0))
        self.bias = np.zeros(0)

    @classmethod
    def create(
        cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext
    ) -> "TextIntentClassifier":
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [m for m in training_data.intent_examples if m.get(TEXT)]
        texts = [m.get(TEXT) for m in examples]
        self.vectorizers = _vectorizers(self.config)
        features = hstack([v.fit_transform(texts) for v in self.vectorizers]).tocsr()
        model = LogisticRegression(C=self.config["C"], max_iter=self.config["max_iter"], class_weight=self.config["class_weight"])
        model.fit(features, [m.get(INTENT) for m in examples])
        self.classes = [str(c) for c in model.classes_]
        coef, bias = model.coef_.astype(np.float32), model.intercept_.astype(np.float32)
        if len(self.classes) == 2:  # one row of weights: softmax over (-z/2, z/2) is the sigmoid of z
            coef, bias = np.vstack([-coef / 2, coef / 2]), np.array([-bias[0] / 2, bias[0] / 2])
        # stored as (features x intents) and contiguous, so that scoring does not copy it per message
        self.weights, self.bias = np.ascontiguousarray(coef.T), bias
        self.idf_diagonals = _idf_diagonals(self.vectorizers)
        self.persist()
        return self._resource

    def persist(self) -> None:
        with self._storage.write_to(self._resource) as folder:
            described = {
                "classes": self.classes,
                "vocabularies": [{t: int(i) for t, i in v.vocabulary_.items()} for v in self.vectorizers],
                "idf": [v.idf_.tolist() for v in self.vectorizers],
            }
            (folder / self.MODEL_FILE).write_text(json.dumps(described))
            np.savez_compressed(folder / self.WEIGHTS_FILE, weights=self.weights, bias=self.bias)

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "TextIntentClassifier":
        component = cls(config, model_storage, resource)
        with model_storage.read_from(resource) as folder:
            described = json.loads((folder / cls.MODEL_FILE).read_text())
            with np.load(folder / cls.WEIGHTS_FILE, allow_pickle=False) as arrays:
                component.weights, component.bias = np.ascontiguousarray(arrays["weights"]), arrays["bias"]
        component.classes = described["classes"]
        component.vectorizers = _vectorizers(component.config, described["vocabularies"])
        for vectorizer, idf in zip(component.vectorizers, described["idf"]):
            vectorizer.idf_ = np.asarray(idf)
        component.idf_diagonals = _idf_diagonals(component.vectorizers)
        return component

    def features(self, texts: List[str]) -> csr_matrix:
        """The TF-IDF features of `texts`, exactly as the vectorizers' `transform` computes them.

        Done here because scikit-learn's `transform` checks every fitted attribute and rebuilds
        the idf vector from its diagonal matrix on each call: half of the classifier's time per message.
        """
        blocks = []
        for vectorizer, idf in zip(self.vectorizers, self.idf_diagonals):
            counts = CountVectorizer.transform(vectorizer, texts).astype(np.float64)
            np.log(counts.data, counts.data)  # sublinear tf: 1 + log(count)
            counts.data += 1
            blocks.append(normalize(counts * idf, norm="l2", copy=False))
        return hstack(blocks).tocsr()

    def probabilities(self, texts: List[str]) -> np.ndarray:
        scores = self.features(texts) @ self.weights + self.bias
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)

    def process(self, messages: List[Message]) -> List[Message]:
        if not self.classes:
            return messages
        probabilities = self.probabilities([m.get(TEXT) or "" for m in messages])
        for message, row in zip(messages, probabilities):
            order = np.argsort(-row)[: self.config["ranking_length"]]
            ranking = [{INTENT_NAME_KEY: self.classes[i], PREDICTED_CONFIDENCE_KEY: float(row[i])} for i in order]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
