// prom_check: a small, strict parser of the Prometheus text exposition
// format (version 0.0.4), for the test of `keyfs-ctl metrics`
// (tests/mount/watch_test.sh). Reads stdin; exit 0 and "N families, M
// samples" when it parses, else exit 1 and the first fault with its line.
//
// Beyond the grammar (names, labels and their escapes, values, # HELP and
// # TYPE), it checks what a scraper relies on: a family's TYPE comes before
// its samples and is given once, its samples are together, no series is
// given twice; and what keyfs promises: every family has HELP and TYPE,
// counters are named *_total and never negative.

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <string>

namespace {

struct Family {
  std::string type;
  bool help = false;
  bool samples_done = false;  // another family's sample came after ours
  int samples = 0;
};

bool NameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; }
bool NameChar(char c) { return NameStart(c) || std::isdigit(static_cast<unsigned char>(c)); }

[[noreturn]] void Fail(int line, const std::string& why) {
  std::fprintf(stderr, "line %d: %s\n", line, why.c_str());
  std::exit(1);
}

// A metric name at `text[*at]`, advancing past it.
std::string Name(const std::string& text, size_t* at, bool label, int line) {
  size_t start = *at;
  if (*at >= text.size() || !NameStart(text[*at]) || (label && text[*at] == ':')) {
    Fail(line, "expected a name at column " + std::to_string(*at + 1));
  }
  while (*at < text.size() && NameChar(text[*at]) && !(label && text[*at] == ':')) ++*at;
  return text.substr(start, *at - start);
}

bool ParseValue(const std::string& text, double* value) {
  if (text == "NaN") return *value = NAN, true;
  if (text == "+Inf") return *value = INFINITY, true;
  if (text == "-Inf") return *value = -INFINITY, true;
  if (text.empty()) return false;
  char* end = nullptr;
  *value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size();
}

}  // namespace

int main() {
  std::map<std::string, Family> families;
  std::set<std::string> series;
  std::string current;  // the family of the last sample
  std::string text;
  int line = 0, samples = 0;
  while (std::getline(std::cin, text)) {
    ++line;
    if (text.empty()) continue;
    if (text[0] == '#') {
      if (!text.starts_with("# HELP ") && !text.starts_with("# TYPE ")) continue;  // a comment
      size_t at = 7;
      std::string name = Name(text, &at, false, line);
      if (at >= text.size() || text[at] != ' ') Fail(line, "expected a space after " + name);
      std::string rest = text.substr(at + 1);
      Family& family = families[name];
      if (family.samples > 0) Fail(line, name + ": HELP or TYPE after its samples");
      if (text[2] == 'H') {
        if (family.help) Fail(line, name + ": a second HELP");
        family.help = true;
      } else {
        if (!family.type.empty()) Fail(line, name + ": a second TYPE");
        if (rest != "counter" && rest != "gauge" && rest != "histogram" && rest != "summary" &&
            rest != "untyped") {
          Fail(line, name + ": unknown TYPE '" + rest + "'");
        }
        family.type = rest;
      }
      continue;
    }
    size_t at = 0;
    std::string name = Name(text, &at, false, line);
    std::string labels;
    if (at < text.size() && text[at] == '{') {
      ++at;
      std::set<std::string> seen;
      while (at < text.size() && text[at] != '}') {
        std::string label = Name(text, &at, true, line);
        if (!seen.insert(label).second) Fail(line, "label " + label + " given twice");
        if (text.compare(at, 2, "=\"") != 0) Fail(line, "expected =\" after label " + label);
        at += 2;
        std::string value;
        while (at < text.size() && text[at] != '"') {
          if (text[at] == '\\') {
            if (++at >= text.size()) break;
            if (text[at] != '\\' && text[at] != '"' && text[at] != 'n') {
              Fail(line, std::string("bad escape \\") + text[at]);
            }
          }
          value += text[at++];
        }
        if (at >= text.size()) Fail(line, "unterminated label value");
        ++at;
        labels += label + "=" + value + ",";
        if (at < text.size() && text[at] == ',') ++at;
      }
      if (at >= text.size()) Fail(line, "unterminated label set");
      ++at;
    }
    if (at >= text.size() || text[at] != ' ') Fail(line, "expected a space before the value");
    std::string rest = text.substr(at + 1);
    std::string value_text = rest.substr(0, rest.find(' '));
    double value = 0;
    if (!ParseValue(value_text, &value)) Fail(line, "'" + value_text + "' is not a value");
    if (rest.find(' ') != std::string::npos) {
      std::string stamp = rest.substr(rest.find(' ') + 1);
      if (stamp.empty() || stamp.find_first_not_of("-0123456789") != std::string::npos) {
        Fail(line, "'" + stamp + "' is not a timestamp");
      }
    }
    auto it = families.find(name);
    if (it == families.end() || it->second.type.empty()) Fail(line, name + ": sample before its TYPE");
    Family& family = it->second;
    if (!family.help) Fail(line, name + ": no HELP");
    if (name != current) {
      if (!current.empty()) families[current].samples_done = true;
      if (family.samples_done) Fail(line, name + ": its samples are not together");
      current = name;
    }
    if (!series.insert(name + "{" + labels + "}").second) Fail(line, name + ": a series given twice");
    if (family.type == "counter") {
      if (!name.ends_with("_total")) Fail(line, name + ": a counter not named *_total");
      if (value < 0 || std::isnan(value)) Fail(line, name + ": a counter below zero");
    }
    ++family.samples;
    ++samples;
  }
  for (const auto& [name, family] : families) {
    if (family.samples == 0) Fail(line, name + ": HELP or TYPE without samples");
  }
  std::printf("%zu families, %d samples\n", families.size(), samples);
  return samples > 0 ? 0 : 1;
}
