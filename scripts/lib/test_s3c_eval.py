"""The metrics and parsers of scripts/eval (s3c_eval), on hand-computed cases.

    python3 -m unittest discover -s scripts/lib -p 'test_*.py'
"""

import math
import os
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import s3c_eval  # noqa: E402


class Metrics(unittest.TestCase):
    def test_ndcg_uses_linear_gains_and_a_log2_discount(self):
        gains = {1: 4, 2: 1}
        ideal = 4 / math.log2(2) + 1 / math.log2(3)
        self.assertAlmostEqual(s3c_eval.ndcg_at([1, 2], gains), 1.0)
        self.assertAlmostEqual(s3c_eval.ndcg_at([2, 1], gains),
                               (1 / math.log2(2) + 4 / math.log2(3)) / ideal)
        self.assertAlmostEqual(s3c_eval.ndcg_at([9, 1], gains), (4 / math.log2(3)) / ideal)
        # Only the first k count; nothing relevant gives 0.
        self.assertEqual(s3c_eval.ndcg_at([9, 1], gains, k=1), 0.0)
        self.assertEqual(s3c_eval.ndcg_at([1], {}), 0.0)

    def test_average_precision_divides_by_every_relevant_document(self):
        gains = {1: 4, 2: 1, 3: 2}
        # Relevant at ranks 1 and 3; document 3 never found.
        self.assertAlmostEqual(s3c_eval.average_precision_at([1, 9, 2], gains), (1 + 2 / 3) / 3)
        self.assertAlmostEqual(s3c_eval.average_precision_at([9, 1], gains, k=1), 0.0)
        self.assertEqual(s3c_eval.average_precision_at([1], {}), 0.0)

    def test_recall_counts_the_relevant_among_the_first_k(self):
        gains = {1: 4, 2: 1, 3: 2, 4: 1}
        self.assertAlmostEqual(s3c_eval.recall_at([1, 9, 2, 3], gains, k=3), 0.5)
        self.assertEqual(s3c_eval.recall_at([], gains), 0.0)

    def test_passages_of_one_document_count_once_at_their_best_rank(self):
        self.assertEqual(s3c_eval.dedup([3, 1, 3, 2, 1]), [3, 1, 2])
        results = s3c_eval.evaluate({1: [5, 5, 6]}, {1: {6: 4}, 2: {}})
        self.assertEqual(results["queries"], 1)
        self.assertAlmostEqual(results["r@10"], 1.0)
        self.assertAlmostEqual(results["ndcg@10"], 1 / math.log2(3))

    def test_the_check_names_each_mode_below_its_floor(self):
        results = {"keyword": {"ndcg@10": 0.34}, "hybrid": {"ndcg@10": 0.41}}
        self.assertEqual(s3c_eval.below(results, {"keyword": 0.35, "hybrid": 0.40,
                                                  "semantic": 0.36}),
                         ["keyword: nDCG@10 0.340 is below 0.35"])


class Collection(unittest.TestCase):
    def test_documents_queries_and_judgments_parse_as_the_readme_says(self):
        docs = s3c_eval.documents(
            ".I 1\n.T\nexperimental investigation\nof wings .\n.A\nbrenckman,m.\n.B\nj.ae.\n"
            ".W\nan abstract\non two lines .\n.I 2\n.T\nsecond\n.W\ntext\n")
        self.assertEqual(docs, [(1, "experimental investigation of wings .",
                                 "an abstract on two lines ."), (2, "second", "text")])
        # Numbered in file order, not by .I (which has gaps).
        self.assertEqual(s3c_eval.queries(".I 001\n.W\nwhat is\nlift ?\n.I 004\n.W\ndrag\n"),
                         [(1, "what is lift ?"), (2, "drag")])
        self.assertEqual(s3c_eval.judgments("1 184 2\n1 29 5\n1 12 -1\n2 7 4\n"),
                         {1: {184: 3}, 2: {7: 1}})

    def test_queries_lose_the_punctuation_the_syntax_would_read(self):
        self.assertEqual(s3c_eval.plain_query("what is -lift (a/b) \"x\" OR y:z ?"),
                         "what is lift a b x or y z")


if __name__ == "__main__":
    unittest.main()
