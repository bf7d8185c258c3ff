"""The event-stream LSTM of Lang & Rettenmeier (2017), with article data the paper named as future work.

Each event is the embedding of its action type and of its hashed article, brand and category,
plus its log gap to the previous event, log price and log age at the cut-off; one LSTM layer
reads the events oldest first. The logistic output layer sees the LSTM state and the inputs
about the prediction moment (time since the last event, weekday, hour), as in the paper, and the
summaries of the whole horizon that the last 200 events may not reach back over (inputs.SUMMARIES). It is
applied after every event, so a history gets a probability per event: the last one is the
prediction, the way it moves along the sequence explains it.
"""

from __future__ import annotations

import torch
from torch import nn

from consumer_assets.ml.model.batch import Batch
from consumer_assets.ml.model.config import Encoding, LstmConfig
from consumer_assets.ml.model.inputs import N_CONTINUOUS, N_STATIC


class EventLstm(nn.Module):
    """P(order in the next 7 days) after each event of a history."""

    def __init__(self, config: LstmConfig, encoding: Encoding | None = None) -> None:
        super().__init__()
        self.config = config
        self.encoding = encoding or Encoding()
        c, e = config, self.encoding
        self.event_type = nn.Embedding(len(e.action_types), c.type_dim)
        # Bucket 0 is "no id": a fixed zero vector, the event type already says there is none.
        self.article = nn.Embedding(e.article_buckets, c.article_dim, padding_idx=0)
        self.brand = nn.Embedding(e.brand_buckets, c.brand_dim, padding_idx=0)
        self.category = nn.Embedding(e.category_buckets, c.category_dim, padding_idx=0)
        width = c.type_dim + c.article_dim + c.brand_dim + c.category_dim + N_CONTINUOUS
        # Time-major (steps, rows, features): the layout the fused CPU (oneDNN) and cuDNN kernels
        # compute in, so no transposed copy of the inputs is made on the way in or out.
        self.lstm = nn.LSTM(width, c.hidden)
        self.output = nn.Linear(c.hidden + N_STATIC, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        # Unit-variance embeddings would dominate the scaled continuous inputs; start them smaller.
        nn.init.normal_(self.event_type.weight, std=0.3)
        # The ids start as no information at all: random vectors would be a unique key per history
        # that the LSTM can memorise (seven cut-off days of one profile share most of their events
        # and labels), while zero ones only grow where an id helps across profiles.
        for emb in (self.article, self.brand, self.category):
            nn.init.zeros_(emb.weight)
        # Forget-gate bias 1: the cell keeps what it saw by default (gate order i, f, g, o).
        hidden = self.config.hidden
        with torch.no_grad():
            self.lstm.bias_ih_l0[hidden : 2 * hidden].fill_(1.0)
            self.lstm.bias_hh_l0[hidden : 2 * hidden].zero_()

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-event logits (B, T), final logits (B,)); steps past a row's length are padding."""
        per_event, last, _ = self.run(batch, penalty=False)
        return per_event, last

    def run(self, batch: Batch, penalty: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """forward's logits, and with `penalty` the mean squared contribution of the ids to the gates."""
        # Everything per event is steps first, (T, B, ...), as the batch holds it and the LSTM runs.
        embedded = [self.article(batch.article), self.brand(batch.brand), self.category(batch.category)]
        id_penalty = None
        if penalty:
            # Penalising what the ids add to the gate inputs, not the embeddings themselves, leaves
            # no way around it by scaling embeddings down and the LSTM's weights up.
            ids = torch.cat(embedded, dim=-1)
            start = self.config.type_dim
            w = self.lstm.weight_ih_l0[:, start : start + ids.shape[-1]]
            id_penalty = ((ids @ w.T).float() ** 2).sum(-1).mean()
        inputs = torch.cat([self.event_type(batch.event_type), *embedded, batch.continuous], dim=-1)
        states, _ = self.lstm(inputs)  # (T, B, hidden)
        hidden = self.config.hidden
        weight = self.output.weight
        # The output layer in float32 even under bf16 autocast: bf16 logits would be off by ~1% in
        # probability, visible in the calibration. The static inputs add one number per history to
        # every step's logit, so the probabilities along a history differ by what its events did.
        with torch.autocast(states.device.type, enabled=False):
            static_term = batch.static.float() @ weight[:, hidden:].T + self.output.bias
            per_event = (states.float() @ weight[:, :hidden].T).squeeze(-1).T + static_term  # (B, T)
        last = per_event.gather(1, (batch.lengths.to(per_event.device) - 1).unsqueeze(1)).squeeze(1)
        return per_event, last, id_penalty


def parameter_shapes(config: LstmConfig, encoding: Encoding) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor of the network `config` and `encoding` describe, allocating none:
    the network is built on the meta device, which records shapes and holds no data."""
    with torch.device("meta"):
        network = EventLstm(config, encoding)
    return {name: tuple(tensor.shape) for name, tensor in network.state_dict().items()}
