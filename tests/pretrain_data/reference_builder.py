"""The original `ExampleBuilder` segmentation, restated plainly from spec §7.2 (lists of
sentences, no batching), to cross-check our batched builder example by example."""


class ReferenceBuilder:

    def __init__(self, max_length, rng):
        self.rng = rng
        self.sentences = []
        self.length = 0
        self.max_length = max_length
        self.target_length = max_length

    def add_line_ids(self, ids):
        self.sentences.append(ids)
        self.length += len(ids)
        if self.length >= self.target_length:
            return self.create()
        return None

    def add_blank_line(self):
        if self.length != 0:
            return self.create()
        return self.add_line_ids([])

    def create(self):
        if self.rng.random() < 0.1:
            target = 100000
        else:
            target = (self.target_length - 3) // 2
        first, second = [], []
        for sentence in self.sentences:
            if (len(first) == 0 or len(first) + len(sentence) < target or
                    (len(second) == 0 and len(first) < target and self.rng.random() < 0.5)):
                first += sentence
            else:
                second += sentence
        first = first[:self.max_length - 2]
        second = second[:max(0, self.max_length - len(first) - 3)]
        self.sentences = []
        self.length = 0
        if self.rng.random() < 0.05:
            self.target_length = self.rng.randint(5, self.max_length)
        else:
            self.target_length = self.max_length
        return first, second
