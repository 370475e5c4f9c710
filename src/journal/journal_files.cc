#include "src/journal/journal_files.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace keyfs {

namespace {

constexpr std::string_view kPrefix = "journal-";

// "journal-<digits><suffix>" -> digits as a number.
std::optional<uint64_t> ParseGen(std::string_view name, std::string_view suffix) {
  if (!name.starts_with(kPrefix) || !name.ends_with(suffix)) return std::nullopt;
  std::string_view digits = name.substr(kPrefix.size(), name.size() - kPrefix.size() - suffix.size());
  if (digits.empty()) return std::nullopt;
  uint64_t gen = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), gen);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return gen;
}

}  // namespace

std::string JournalBaseName(uint64_t gen) { return fmt::format("journal-{:06}.base", gen); }
std::string JournalIncrName(uint64_t gen) { return fmt::format("journal-{:06}.incr", gen); }

Result<JournalFiles> FindJournalFiles(Env* env, const std::string& dir) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(dir));
  std::vector<uint64_t> bases, incrs;
  JournalFiles files;
  for (const std::string& name : names) {
    if (auto gen = ParseGen(name, ".base")) {
      bases.push_back(*gen);
    } else if (auto gen = ParseGen(name, ".incr")) {
      incrs.push_back(*gen);
    } else if (ParseGen(name, ".base.tmp")) {
      files.obsolete.push_back(name);
    }
  }
  std::sort(bases.begin(), bases.end());
  std::sort(incrs.begin(), incrs.end());
  if (!bases.empty()) files.base_gen = bases.back();
  uint64_t first = files.base_gen.value_or(0);
  for (uint64_t gen : bases) {
    if (gen < first) files.obsolete.push_back(JournalBaseName(gen));
  }
  for (uint64_t gen : incrs) {
    if (gen < first) {
      files.obsolete.push_back(JournalIncrName(gen));
    } else {
      files.incr_gens.push_back(gen);
    }
  }
  return files;
}

}  // namespace keyfs
