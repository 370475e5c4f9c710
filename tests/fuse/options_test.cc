#include "fuse/options.h"

#include <gtest/gtest.h>

namespace keyfs {
namespace {

class OptionsTest : public ::testing::Test {
 protected:
  OptionsTest() {
    facts_.physical_memory = uint64_t{16} << 30;
    facts_.home = "/home/ann";
    facts_.cwd = "/work";
  }
  Result<CommandLineAction> Parse(std::vector<const char*> args) {
    args.insert(args.begin(), "keyfs");
    return ParseCommandLine(static_cast<int>(args.size()), args.data(), facts_, &options_);
  }
  std::string ErrorOf(std::vector<const char*> args) {
    auto result = Parse(std::move(args));
    EXPECT_FALSE(result.ok());
    return result.status().message();
  }
  MachineFacts facts_;
  MountOptions options_;
};

TEST_F(OptionsTest, DefaultsAreSensible) {
  ASSERT_TRUE(Parse({"/mnt/kv"}).ok());
  EXPECT_EQ(options_.mountpoint, "/mnt/kv");
  EXPECT_EQ(options_.store_dir, "/home/ann/.local/share/keyfs/mnt-kv");
  EXPECT_EQ(options_.max_memory, uint64_t{4} << 30);  // a quarter of RAM
  EXPECT_EQ(options_.block_size, 256u * 1024);
  EXPECT_FALSE(options_.foreground);
}

TEST_F(OptionsTest, SizesTakeDecimalsAsTmpfsUsersWrite) {
  ASSERT_TRUE(Parse({"/mnt/kv", "-o", "max_memory=1.5G"}).ok());
  EXPECT_EQ(options_.max_memory, uint64_t{3} << 29);
  EXPECT_NE(ErrorOf({"/mnt/kv", "-o", "max_memory=1.5"}).find("is not a size"), std::string::npos);
}

TEST_F(OptionsTest, XdgDataHomeWinsOverHome) {
  facts_.xdg_data_home = "/data";
  ASSERT_TRUE(Parse({"/mnt/kv"}).ok());
  EXPECT_EQ(options_.store_dir, "/data/keyfs/mnt-kv");
}

TEST_F(OptionsTest, RelativePathsAreMadeAbsolute) {
  ASSERT_TRUE(Parse({"mnt/", "-o", "store=state"}).ok());
  EXPECT_EQ(options_.mountpoint, "/work/mnt");
  EXPECT_EQ(options_.store_dir, "/work/state");
}

TEST_F(OptionsTest, AllKeyfsOptions) {
  ASSERT_TRUE(Parse({"-f", "/mnt/kv", "-o",
                     "store=/var/lib/kv,max_memory=512M,block_size=1M,log=/tmp/k.log,"
                     "log_level=warn"})
                  .ok());
  EXPECT_TRUE(options_.foreground);
  EXPECT_EQ(options_.store_dir, "/var/lib/kv");
  EXPECT_EQ(options_.max_memory, 512u << 20);
  EXPECT_EQ(options_.block_size, 1u << 20);
  EXPECT_EQ(options_.log_file, "/tmp/k.log");
  EXPECT_EQ(options_.log_level, spdlog::level::warn);
}

TEST_F(OptionsTest, MemoryAsAPercentageOfRam) {
  ASSERT_TRUE(Parse({"/m", "-omax_memory=50%"}).ok());
  EXPECT_EQ(options_.max_memory, uint64_t{8} << 30);
}

TEST_F(OptionsTest, FstabFormGivesTheStoreFirst) {
  ASSERT_TRUE(Parse({"/var/lib/kv", "/mnt/kv", "-o", "rw,nodev,allow_other,_netdev"}).ok());
  EXPECT_EQ(options_.store_dir, "/var/lib/kv");
  EXPECT_EQ(options_.mountpoint, "/mnt/kv");
  EXPECT_EQ(options_.kernel_options,
            (std::vector<std::string>{"rw", "nodev", "allow_other"}));
}

TEST_F(OptionsTest, KernelOptionsPassThrough) {
  ASSERT_TRUE(Parse({"/m", "-o", "ro,default_permissions,fsname=my\\,store,noatime"}).ok());
  EXPECT_TRUE(options_.read_only);
  EXPECT_EQ(options_.kernel_options,
            (std::vector<std::string>{"ro", "fsname=my,store", "noatime"}));
}

TEST_F(OptionsTest, DebugMeansForegroundAndDebugLogs) {
  ASSERT_TRUE(Parse({"-d", "/m"}).ok());
  EXPECT_TRUE(options_.foreground);
  EXPECT_TRUE(options_.debug);
  EXPECT_EQ(options_.log_level, spdlog::level::debug);
}

TEST_F(OptionsTest, HelpAndVersion) {
  EXPECT_EQ(*Parse({"--help"}), CommandLineAction::kHelp);
  EXPECT_EQ(*Parse({"/m", "-h"}), CommandLineAction::kHelp);
  EXPECT_EQ(*Parse({"--version"}), CommandLineAction::kVersion);
  std::string usage = UsageText(facts_);
  for (const char* option : {"store=", "max_memory=", "block_size=", "log=", "log_level=",
                             "allow_other", "-f", "-d"}) {
    EXPECT_NE(usage.find(option), std::string::npos) << option;
  }
}

TEST_F(OptionsTest, BadInputIsOneClearMessage) {
  EXPECT_EQ(ErrorOf({}), "no mount point given (usage: keyfs MOUNTPOINT [-o OPTIONS])");
  EXPECT_EQ(ErrorOf({"/m", "-o", "bogus"}),
            "option 'bogus': unknown option (see keyfs --help)");
  EXPECT_EQ(ErrorOf({"/m", "-o", "max_memory=lots"}),
            "option 'max_memory': 'lots' is not a size (examples: 4096, 64K, 1.5G, 512M)");
  EXPECT_EQ(ErrorOf({"/m", "-o", "max_memory=10K"}), "option 'max_memory': must be at least 4M");
  EXPECT_EQ(ErrorOf({"/m", "-o", "max_memory=0%"}),
            "option 'max_memory': '0%' is not a percentage between 1% and 100%");
  EXPECT_EQ(ErrorOf({"/m", "-o", "max_memory"}),
            "option 'max_memory': needs a value (max_memory=...)");
  EXPECT_EQ(ErrorOf({"/m", "-o", "block_size=3000"}),
            "option 'block_size': must be a power of two from 4K to 16M");
  EXPECT_EQ(ErrorOf({"/m", "-o", "log_level=loud"}),
            "option 'log_level': 'loud' is not a log level (trace, debug, info, warn, "
            "error, critical, off)");
  EXPECT_EQ(ErrorOf({"/m", "-o", "allow_other=yes"}), "option 'allow_other': takes no value");
  EXPECT_EQ(ErrorOf({"/m", "-x"}), "unknown flag '-x' (see keyfs --help)");
  EXPECT_EQ(ErrorOf({"/a", "/b", "/c"}),
            "too many arguments: '/c' (usage: keyfs [STORE] MOUNTPOINT [-o OPTIONS])");
  EXPECT_EQ(ErrorOf({"/m", "-o"}), "-o needs a list of options");
  EXPECT_EQ(ErrorOf({"/s1", "/m", "-o", "store=/s2"}),
            "two store directories given: '/s1' and store=/s2");
}

TEST_F(OptionsTest, SwapModeAndItsOptions) {
  ASSERT_TRUE(Parse({"/m", "-o", "store=/s,mode=swap"}).ok());
  EXPECT_EQ(options_.mode, StoreMode::kSwap);
  EXPECT_EQ(options_.swap_file, "/s/swap");  // in the store directory
  EXPECT_EQ(options_.swap_size, 0u);         // chosen at mount from the free space
  EXPECT_EQ(options_.page_size, 4096u);
  ASSERT_TRUE(Parse({"/m", "-o", "mode=swap,swap_file=rel/sw,swap_size=2G,page_size=64K"}).ok());
  EXPECT_EQ(options_.swap_file, "/work/rel/sw");
  EXPECT_EQ(options_.swap_size, uint64_t{2} << 30);
  EXPECT_EQ(options_.page_size, 65536u);
  ASSERT_TRUE(Parse({"/m"}).ok());
  EXPECT_EQ(options_.mode, StoreMode::kDisk);
}

TEST_F(OptionsTest, BadSwapOptionsAreRefusedNamingTheOption) {
  EXPECT_EQ(ErrorOf({"/m", "-o", "swap_file=/tmp/x"}),
            "option 'swap_file': belongs to mode=swap (add mode=swap, or leave it out)");
  EXPECT_NE(ErrorOf({"/m", "-o", "mode=disk,swap_size=1G"}).find("option 'swap_size': belongs"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"/m", "-o", "mode=swap,page_size=3000"}).find("power of two from 512"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"/m", "-o", "mode=swap,page_size=2M"}).find("power of two from 512"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"/m", "-o", "mode=swap,swap_size=0"}).find("more than 0"), std::string::npos);
  EXPECT_NE(ErrorOf({"/m", "-o", "mode=swap,swap_size=lots"}).find("option 'swap_size'"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"/m", "-o", "mode=swap,swap_file="}).find("needs a value"), std::string::npos);
}

TEST_F(OptionsTest, CacheOptions) {
  ASSERT_TRUE(Parse({"/m"}).ok());
  EXPECT_EQ(options_.flush_delay_ns, 1'000'000'000);
  EXPECT_EQ(options_.io_threads, 2);
  EXPECT_TRUE(options_.compress);
  ASSERT_TRUE(Parse({"/m", "-o", "mode=disk,flush_delay=250ms,io_threads=4,compression=none"}).ok());
  EXPECT_EQ(options_.flush_delay_ns, 250'000'000);
  EXPECT_EQ(options_.io_threads, 4);
  EXPECT_FALSE(options_.compress);
  ASSERT_TRUE(Parse({"/m", "-o", "flush_delay=0"}).ok());
  EXPECT_EQ(options_.flush_delay_ns, 0);
  ASSERT_TRUE(Parse({"/m", "-o", "flush_delay=2.5s"}).ok());
  EXPECT_EQ(options_.flush_delay_ns, 2'500'000'000);
  EXPECT_NE(ErrorOf({"/m", "-o", "mode=tape"}).find("must be disk or swap"), std::string::npos);
  EXPECT_NE(ErrorOf({"/m", "-o", "flush_delay=soon"}).find("must be a duration"), std::string::npos);
  EXPECT_NE(ErrorOf({"/m", "-o", "flush_delay=-1s"}).find("must be a duration"), std::string::npos);
  EXPECT_NE(ErrorOf({"/m", "-o", "io_threads=0"}).find("from 1 to 64"), std::string::npos);
  EXPECT_NE(ErrorOf({"/m", "-o", "io_threads=65"}).find("from 1 to 64"), std::string::npos);
  EXPECT_NE(ErrorOf({"/m", "-o", "compression=zstd"}).find("lz4 or none"), std::string::npos);
}

TEST_F(OptionsTest, JournalOptions) {
  ASSERT_TRUE(Parse({"/m"}).ok());
  MountOptions options = options_;
  EXPECT_EQ(options.journal.appendfsync, AppendFsync::kEverySec);
  EXPECT_TRUE(options.journal.load_truncated);
  EXPECT_EQ(options.journal.auto_rewrite_percentage, 100u);
  EXPECT_EQ(options.journal.auto_rewrite_min_size, uint64_t{64} << 20);

  ASSERT_TRUE(Parse({"/m", "-o",
                     "appendfsync=always,journal_load_truncated=no,auto_rewrite_percentage=0,"
                     "auto_rewrite_min_size=1G"})
                  .ok());
  options = options_;
  EXPECT_EQ(options.journal.appendfsync, AppendFsync::kAlways);
  EXPECT_FALSE(options.journal.load_truncated);
  EXPECT_EQ(options.journal.auto_rewrite_percentage, 0u);
  EXPECT_EQ(options.journal.auto_rewrite_min_size, uint64_t{1} << 30);
  ASSERT_TRUE(Parse({"/m", "-o", "appendfsync=no"}).ok());
  EXPECT_EQ(options_.journal.appendfsync, AppendFsync::kNo);

  EXPECT_EQ(ErrorOf({"/m", "-o", "appendfsync=sometimes"}),
            "option 'appendfsync': must be always, everysec or no");
  EXPECT_EQ(ErrorOf({"/m", "-o", "journal_load_truncated=maybe"}),
            "option 'journal_load_truncated': must be yes or no");
  EXPECT_EQ(ErrorOf({"/m", "-o", "auto_rewrite_percentage=-5"}),
            "option 'auto_rewrite_percentage': must be a whole number from 0 (never) to 100000");
  EXPECT_EQ(ErrorOf({"/m", "-o", "auto_rewrite_min_size=big"}),
            "option 'auto_rewrite_min_size': 'big' is not a size (examples: 4096, 64K, 1.5G, 512M)");
}

TEST_F(OptionsTest, KernelCachingOptions) {
  ASSERT_TRUE(Parse({"/m"}).ok());
  EXPECT_EQ(options_.adapter.entry_timeout, 86400);
  EXPECT_EQ(options_.adapter.attr_timeout, 86400);
  EXPECT_EQ(options_.adapter.negative_timeout, 86400);
  EXPECT_FALSE(options_.adapter.writeback_cache);
  EXPECT_EQ(options_.adapter.max_background, 12u);

  ASSERT_TRUE(Parse({"/m", "-o",
                     "entry_timeout=0.5,attr_timeout=0,negative_timeout=10,writeback_cache=yes,"
                     "max_background=64"})
                  .ok());
  EXPECT_EQ(options_.adapter.entry_timeout, 0.5);
  EXPECT_EQ(options_.adapter.attr_timeout, 0);
  EXPECT_EQ(options_.adapter.negative_timeout, 10);
  EXPECT_TRUE(options_.adapter.writeback_cache);
  EXPECT_EQ(options_.adapter.max_background, 64u);

  EXPECT_EQ(ErrorOf({"/m", "-o", "attr_timeout=-1"}),
            "option 'attr_timeout': must be a number of seconds from 0 to 31536000");
  EXPECT_EQ(ErrorOf({"/m", "-o", "entry_timeout=soon"}),
            "option 'entry_timeout': must be a number of seconds from 0 to 31536000");
  EXPECT_EQ(ErrorOf({"/m", "-o", "negative_timeout=nan"}),
            "option 'negative_timeout': must be a number of seconds from 0 to 31536000");
  EXPECT_EQ(ErrorOf({"/m", "-o", "writeback_cache"}),
            "option 'writeback_cache': needs a value (writeback_cache=...)");
  EXPECT_EQ(ErrorOf({"/m", "-o", "writeback_cache=on"}),
            "option 'writeback_cache': must be yes or no");
  EXPECT_EQ(ErrorOf({"/m", "-o", "max_background=0"}),
            "option 'max_background': must be a whole number from 1 to 65535");
}

TEST_F(OptionsTest, RequestPathOptions) {
  ASSERT_TRUE(Parse({"/m"}).ok());
  EXPECT_TRUE(options_.io_uring);
  EXPECT_EQ(options_.busy_poll_ns, 100'000);

  ASSERT_TRUE(Parse({"/m", "-o", "io_uring=no,busy_poll=0"}).ok());
  EXPECT_FALSE(options_.io_uring);
  EXPECT_EQ(options_.busy_poll_ns, 0);
  ASSERT_TRUE(Parse({"/m", "-o", "busy_poll=250us"}).ok());
  EXPECT_EQ(options_.busy_poll_ns, 250'000);
  ASSERT_TRUE(Parse({"/m", "-o", "busy_poll=1ms"}).ok());
  EXPECT_EQ(options_.busy_poll_ns, 1'000'000);

  EXPECT_EQ(ErrorOf({"/m", "-o", "io_uring=maybe"}), "option 'io_uring': must be yes or no");
  EXPECT_EQ(ErrorOf({"/m", "-o", "busy_poll=2ms"}),
            "option 'busy_poll': must be a duration from 0 to 1ms (examples: 100us, 0)");
  EXPECT_EQ(ErrorOf({"/m", "-o", "busy_poll=fast"}),
            "option 'busy_poll': must be a duration from 0 to 1ms (examples: 100us, 0)");
  EXPECT_EQ(ErrorOf({"/m", "-o", "flush_delay=2h"}),
            "option 'flush_delay': must be a duration from 0 to 3600s (examples: 1s, 250ms, 0)");
}

TEST_F(OptionsTest, NoHomeAndNoStoreIsAnError) {
  facts_.home.clear();
  EXPECT_EQ(ErrorOf({"/m"}),
            "no store directory: give -o store=DIR (neither $XDG_DATA_HOME nor $HOME is set)");
}

}  // namespace
}  // namespace keyfs
