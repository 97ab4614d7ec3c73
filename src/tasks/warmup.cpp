// Warm-up corpus of random Countdown attempts with worked arithmetic (see warmup.h).
#include "tinyzero/tasks/warmup.h"

#include <algorithm>
#include <string>
#include <unordered_set>
#include <utility>

#include "rng.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/tasks/prompt.h"

namespace tinyzero {
namespace {

constexpr uint64_t kAttemptStream = 0x3a77;  // stream ids of this file (problem generation uses 1, 2)
constexpr uint64_t kAnswerStream = 0x3a78;
constexpr char kOps[4] = {'+', '-', '*', '/'};

// An expression tree: leaves hold numbers; inner nodes an operator and two children.
struct Node {
  int64_t value = 0;
  char op = 0;  // 0 for a leaf
  int left = -1, right = -1;
};

bool apply(char op, int64_t a, int64_t b, int64_t* out) {
  switch (op) {
    case '+':
      return !__builtin_add_overflow(a, b, out);
    case '-':
      if (a < b) return false;  // stay non-negative
      *out = a - b;
      return true;
    case '*':
      return !__builtin_mul_overflow(a, b, out);
    default:
      if (b == 0 || a % b != 0) return false;  // exact division only
      *out = a / b;
      return true;
  }
}

std::string render(const std::vector<Node>& tree, int at) {
  const Node& n = tree[static_cast<size_t>(at)];
  if (n.op == 0) return std::to_string(n.value);
  auto operand = [&](int child) {
    const std::string text = render(tree, child);
    return tree[static_cast<size_t>(child)].op == 0 ? text : "(" + text + ")";
  };
  return operand(n.left) + n.op + operand(n.right);
}

// The leftmost (in written order) operation whose operands are both numbers, or -1.
int leftmost_reducible(const std::vector<Node>& tree, int at) {
  const Node& n = tree[static_cast<size_t>(at)];
  if (n.op == 0) return -1;
  if (tree[static_cast<size_t>(n.left)].op == 0 && tree[static_cast<size_t>(n.right)].op == 0) return at;
  const int l = leftmost_reducible(tree, n.left);
  return l >= 0 ? l : leftmost_reducible(tree, n.right);
}

// One random attempt; false when a drawn pair had no valid operator (cannot happen: + always works
// unless it overflows).
bool draw_attempt(const std::vector<int64_t>& nums, Rng& rng, CountdownAttempt* out) {
  std::vector<Node> tree;
  std::vector<int> pool;
  for (int64_t x : nums) {
    tree.push_back(Node{x, 0, -1, -1});
    pool.push_back(static_cast<int>(tree.size()) - 1);
  }
  while (pool.size() > 1) {
    const auto last = static_cast<int64_t>(pool.size()) - 1;
    const auto i = static_cast<size_t>(rng.uniform(0, last));
    auto j = static_cast<size_t>(rng.uniform(0, last - 1));
    if (j >= i) ++j;
    const int a = pool[i], b = pool[j];
    // An operator uniformly among those valid for (a, b).
    char valid[4];
    int64_t results[4];
    int n_valid = 0;
    for (char op : kOps) {
      int64_t r;
      if (apply(op, tree[static_cast<size_t>(a)].value, tree[static_cast<size_t>(b)].value, &r)) {
        valid[n_valid] = op;
        results[n_valid++] = r;
      }
    }
    if (n_valid == 0) return false;
    const auto k = static_cast<size_t>(rng.uniform(0, n_valid - 1));
    tree.push_back(Node{results[k], valid[k], a, b});
    const int made = static_cast<int>(tree.size()) - 1;
    // Replace the two operands by their combination.
    pool[std::min(i, j)] = made;
    pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(std::max(i, j)));
  }
  const int root = pool.front();
  out->expression = render(tree, root);
  out->value = tree[static_cast<size_t>(root)].value;
  out->worked = out->expression;
  for (int at = leftmost_reducible(tree, root); at >= 0; at = leftmost_reducible(tree, root)) {
    tree[static_cast<size_t>(at)].op = 0;
    out->worked += "=" + render(tree, root);
  }
  return true;
}

}  // namespace

std::vector<CountdownAttempt> random_countdown_attempts(const std::vector<int64_t>& nums, int64_t count,
                                                        uint64_t seed, uint64_t index) {
  if (nums.size() < 2 || nums.size() > 6)
    throw ConfigError("random_countdown_attempts: " + std::to_string(nums.size()) +
                      " numbers given; Countdown problems have 2 to 6");
  for (int64_t x : nums)
    if (x < 0) throw ConfigError("random_countdown_attempts: number " + std::to_string(x) + " is negative");
  Rng rng(seed, (kAttemptStream << 40) + index);
  std::vector<CountdownAttempt> out;
  std::unordered_set<int64_t> seen;  // values tried
  // Redraw repeated values; give up after many draws in a row bring nothing new (few distinct values).
  for (int64_t misses = 0; static_cast<int64_t>(out.size()) < count && misses < 200 + 20 * count;) {
    CountdownAttempt a;
    if (!draw_attempt(nums, rng, &a) || !seen.insert(a.value).second) {
      ++misses;
      continue;
    }
    misses = 0;
    out.push_back(std::move(a));
  }
  return out;
}

namespace {

// a op b in the ordered layout's four ways: a+b, larger-smaller, a*b, larger/smaller when exact; each
// as (written left operand index: 0 = a, 1 = b; op; value).
struct Combination {
  int left;
  char op;
  int64_t value;
};

std::vector<Combination> four_ways(int64_t a, int64_t b) {
  std::vector<Combination> out;
  int64_t r;
  const int big = a >= b ? 0 : 1;
  const int64_t hi = std::max(a, b), lo = std::min(a, b);
  if (apply('+', a, b, &r)) out.push_back({0, '+', r});
  if (apply('-', hi, lo, &r)) out.push_back({big, '-', r});
  if (apply('*', a, b, &r)) out.push_back({0, '*', r});
  if (apply('/', hi, lo, &r)) out.push_back({big, '/', r});
  return out;
}

}  // namespace

std::vector<CountdownAttempt> ordered_countdown_attempts(const std::vector<int64_t>& nums) {
  if (nums.size() < 2 || nums.size() > 3)
    throw ConfigError("ordered_countdown_attempts: " + std::to_string(nums.size()) +
                      " numbers given; the ordered layout lists candidates for 2 or 3 numbers "
                      "(use random attempts for more)");
  for (int64_t x : nums)
    if (x < 0) throw ConfigError("ordered_countdown_attempts: number " + std::to_string(x) + " is negative");
  auto text = [](const std::string& l, char op, const std::string& r) { return l + op + r; };
  std::vector<CountdownAttempt> out;
  if (nums.size() == 2) {
    for (const Combination& c : four_ways(nums[0], nums[1])) {
      const std::string l = std::to_string(nums[c.left]), r = std::to_string(nums[1 - c.left]);
      out.push_back({text(l, c.op, r), text(l, c.op, r) + "=" + std::to_string(c.value), c.value, ""});
    }
    return out;
  }
  std::unordered_set<std::string> groups;
  constexpr int kPairs[3][3] = {{0, 1, 2}, {0, 2, 1}, {1, 2, 0}};  // i, j, the remaining one
  for (const auto& pair : kPairs) {
    const int64_t ab[2] = {nums[static_cast<size_t>(pair[0])], nums[static_cast<size_t>(pair[1])]};
    const int64_t c = nums[static_cast<size_t>(pair[2])];
    for (const Combination& first : four_ways(ab[0], ab[1])) {
      const std::string inner =
          text(std::to_string(ab[first.left]), first.op, std::to_string(ab[1 - first.left]));
      const std::string group = inner + "=" + std::to_string(first.value);
      if (!groups.insert(group).second) continue;
      const std::string rc[2] = {std::to_string(first.value), std::to_string(c)};
      const std::string ec[2] = {"(" + inner + ")", std::to_string(c)};
      for (const Combination& second : four_ways(first.value, c)) {
        const int l = second.left, r = 1 - second.left;
        out.push_back({text(ec[l], second.op, ec[r]),
                       text(rc[l], second.op, rc[r]) + "=" + std::to_string(second.value), second.value,
                       group});
      }
    }
  }
  return out;
}

std::string countdown_warmup_response(const std::vector<CountdownAttempt>& attempts, size_t answer,
                                      std::optional<int64_t> compare_to, bool target_first) {
  if (answer >= attempts.size())
    throw Error("countdown_warmup_response: answer " + std::to_string(answer) + " of " +
                std::to_string(attempts.size()) + " attempts");
  std::string out;
  for (size_t i = 0; i < attempts.size(); ++i) {
    const std::string& group = attempts[i].group;
    if (!group.empty() && (i == 0 || attempts[i - 1].group != group))
      out += (i == 0 ? " " : "; ") + group + ": " + attempts[i].worked;
    else
      out += (i == 0 ? " " : ", ") + attempts[i].worked;
    if (compare_to) {
      const int64_t v = attempts[i].value;
      const char* relation = v < *compare_to ? "<" : v == *compare_to ? "=" : ">";
      const std::string target = std::to_string(*compare_to);
      out += target_first ? "?" + target + relation : relation + target;
    }
  }
  return out + " </think> <answer>" + attempts[answer].expression + "</answer>";
}

std::vector<WarmupExample> countdown_warmup_examples(const std::vector<Problem>& problems, size_t count,
                                                     const PromptTemplate& prompt,
                                                     const WarmupOptions& options, uint64_t seed) {
  if (problems.empty()) throw ConfigError("countdown_warmup_examples: no problems to make examples of");
  if (options.min_attempts < 1 || options.max_attempts < options.min_attempts)
    throw ConfigError("countdown_warmup_examples: attempts from " + std::to_string(options.min_attempts) +
                      " to " + std::to_string(options.max_attempts) +
                      "; use at least 1, and a maximum no smaller than the minimum");
  if (!(options.stop_prob >= 0 && options.stop_prob <= 1))
    throw ConfigError("countdown_warmup_examples: stop probability " + std::to_string(options.stop_prob) +
                      " is not in [0, 1]");
  std::vector<WarmupExample> out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const Problem& p = problems[i % problems.size()];
    Rng rng(seed, (kAnswerStream << 40) + i);
    int64_t attempts = options.min_attempts;
    if (options.stop_prob > 0) {
      while (attempts < options.max_attempts &&
             static_cast<double>(rng.next() >> 11) * 0x1.0p-53 >= options.stop_prob)
        ++attempts;
    } else {
      attempts = rng.uniform(options.min_attempts, options.max_attempts);
    }
    std::vector<CountdownAttempt> tries;
    if (options.ordered) {
      tries = ordered_countdown_attempts(p.nums);
      if (static_cast<int64_t>(tries.size()) > attempts) tries.resize(static_cast<size_t>(attempts));
    } else {
      tries = random_countdown_attempts(p.nums, attempts, seed, i);
    }
    const auto last = static_cast<int64_t>(tries.size()) - 1;
    const auto pick = static_cast<size_t>(options.answer_last ? last : rng.uniform(0, last));
    out.push_back({prompt.render(p),
                   countdown_warmup_response(
                       tries, pick, options.compare ? std::optional<int64_t>(p.target) : std::nullopt,
                       options.compare_target_first),
                   tries[pick].value == p.target});
  }
  return out;
}

}  // namespace tinyzero
