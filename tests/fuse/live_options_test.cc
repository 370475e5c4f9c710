#include "fuse/live_options.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace keyfs {
namespace {

class LiveOptionsTest : public ::testing::Test {
 protected:
  LiveOptionsTest() {
    facts_.physical_memory = uint64_t{16} << 30;
    facts_.home = "/home/ann";
    facts_.cwd = "/work";
    const char* argv[] = {"keyfs", "/mnt/kv", "-o", "max_memory=256M"};
    EXPECT_TRUE(ParseCommandLine(4, argv, facts_, &mounted_).ok());
  }
  // What `keyfs /mnt/kv -o OPTION` says about OPTION.
  std::string MountError(const std::string& option) {
    const char* argv[] = {"keyfs", "/mnt/kv", "-o", option.c_str()};
    MountOptions options;
    auto result = ParseCommandLine(4, argv, facts_, &options);
    EXPECT_FALSE(result.ok()) << option;
    return result.status().message();
  }
  MachineFacts facts_;
  MountOptions mounted_;
};

TEST_F(LiveOptionsTest, EachLiveOptionChangesWhatTheMountOptionWould) {
  auto set = [&](std::string_view name, std::string_view value) {
    auto changed = WithLiveOption(mounted_, name, value, facts_);
    EXPECT_TRUE(changed.ok()) << name << "=" << value << ": " << changed.status().ToString();
    return changed.ok() ? *changed : mounted_;
  };
  EXPECT_EQ(set("max_memory", "64M").max_memory, uint64_t{64} << 20);
  EXPECT_EQ(set("max_memory", "50%").max_memory, uint64_t{8} << 30);
  EXPECT_EQ(set("flush_delay", "250ms").flush_delay_ns, 250'000'000);
  EXPECT_EQ(set("appendfsync", "always").journal.appendfsync, AppendFsync::kAlways);
  EXPECT_EQ(set("auto_rewrite_percentage", "0").journal.auto_rewrite_percentage, 0u);
  EXPECT_EQ(set("auto_rewrite_min_size", "1G").journal.auto_rewrite_min_size, uint64_t{1} << 30);
  EXPECT_EQ(set("log_level", "debug").log_level, spdlog::level::debug);
  // Only the option named changes.
  MountOptions changed = set("max_memory", "64M");
  EXPECT_EQ(changed.block_size, mounted_.block_size);
  EXPECT_EQ(changed.store_dir, mounted_.store_dir);
  EXPECT_EQ(changed.flush_delay_ns, mounted_.flush_delay_ns);
}

TEST_F(LiveOptionsTest, BadValuesAreRefusedInTheMountParsersWords) {
  for (auto [name, value] : {std::pair{"max_memory", "3M"}, {"max_memory", "lots"},
                             {"flush_delay", "2h"}, {"appendfsync", "sometimes"},
                             {"auto_rewrite_percentage", "-1"}, {"auto_rewrite_min_size", "1X"},
                             {"log_level", "loud"}, {"max_memory", ""}}) {
    auto changed = WithLiveOption(mounted_, name, value, facts_);
    ASSERT_FALSE(changed.ok()) << name << "=" << value;
    EXPECT_EQ(changed.status().code(), EINVAL);
    EXPECT_EQ(changed.status().message(), MountError(std::string(name) + "=" + value));
  }
}

TEST_F(LiveOptionsTest, OptionsFixedAtMountAreRefusedSayingSo) {
  for (const char* name : {"block_size", "store", "io_threads", "mode", "ro", "allow_other"}) {
    auto changed = WithLiveOption(mounted_, name, "1", facts_);
    ASSERT_FALSE(changed.ok()) << name;
    EXPECT_EQ(changed.status().code(), EPERM);
    EXPECT_EQ(changed.status().message(),
              std::string("option '") + name + "' can only be set at mount (keyfs -o " + name +
                  "=...); options that change live: max_memory, flush_delay, appendfsync, "
                  "auto_rewrite_percentage, auto_rewrite_min_size, log_level");
  }
}

TEST_F(LiveOptionsTest, UnknownNamesAreRefusedAsTheMountRefusesThem) {
  auto changed = WithLiveOption(mounted_, "bogus", "1", facts_);
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(changed.status().code(), ENOENT);
  EXPECT_EQ(changed.status().message(), MountError("bogus"));
  // A whole "name=value" is not a name (it would parse as the option).
  changed = WithLiveOption(mounted_, "block_size=4K", "", facts_);
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(changed.status().code(), ENOENT);
}

TEST_F(LiveOptionsTest, ValuesAreWrittenAsTheOptionTakesThem) {
  EXPECT_EQ(LiveOptionValue(mounted_, "max_memory"), "256M");
  EXPECT_EQ(LiveOptionValue(mounted_, "flush_delay"), "1s");
  EXPECT_EQ(LiveOptionValue(mounted_, "appendfsync"), "everysec");
  EXPECT_EQ(LiveOptionValue(mounted_, "auto_rewrite_percentage"), "100");
  EXPECT_EQ(LiveOptionValue(mounted_, "auto_rewrite_min_size"), "64M");
  EXPECT_EQ(LiveOptionValue(mounted_, "log_level"), "info");
  EXPECT_EQ(LiveOptionValue(mounted_, "block_size"), "");
  // Every value read back parses to itself, odd ones included.
  for (auto [name, value] : {std::pair{"max_memory", "1.5G"}, {"max_memory", "4194305"},
                             {"flush_delay", "1.5s"}, {"flush_delay", "0"},
                             {"flush_delay", "100us"}, {"log_level", "warning"}}) {
    auto changed = WithLiveOption(mounted_, name, value, facts_);
    ASSERT_TRUE(changed.ok()) << name << "=" << value;
    std::string text = LiveOptionValue(*changed, name);
    auto again = WithLiveOption(mounted_, name, text, facts_);
    ASSERT_TRUE(again.ok()) << name << "=" << text;
    EXPECT_EQ(LiveOptionValue(*again, name), text);
    EXPECT_EQ(again->max_memory, changed->max_memory);
    EXPECT_EQ(again->flush_delay_ns, changed->flush_delay_ns);
    EXPECT_EQ(again->log_level, changed->log_level);
  }
}

}  // namespace
}  // namespace keyfs
