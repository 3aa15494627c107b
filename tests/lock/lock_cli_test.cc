// `warden lock status | force-unlock | run`, driven through the real binary.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "lock_test_support.h"

namespace warden {
namespace {

using namespace lock_testing;
using testing::Child;
using testing::ChildResult;
using testing::run_warden;
using testing::slurp;
using testing::spit;
using testing::TempDir;
using testing::wait_until;
using testing::warden_binary;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string resolve_command(const std::string& dir, const std::string& name) {
  return "warden lock force-unlock --dataset " + name + " --yes --lock-dir " + dir;
}

TEST(LockCliTest, HelpOnEveryLockCommandShowsAnExample) {
  for (const char* command : {"status", "force-unlock", "run"}) {
    ChildResult result = run_warden({"lock", command, "--help"});
    EXPECT_EQ(result.exit_code, 0) << command;
    EXPECT_TRUE(contains(result.out, "Example:")) << command << "\n" << result.out;
    EXPECT_TRUE(contains(result.out, "Exit codes:")) << command << "\n" << result.out;
  }
  ChildResult group = run_warden({"lock", "--help"});
  EXPECT_EQ(group.exit_code, 0);
  EXPECT_TRUE(contains(group.out, "force-unlock"));
}

// main() builds only the commands of the group a command line names; a global option's value
// (here one spelled like another group) must not be taken for that name.
TEST(LockCliTest, GlobalOptionsAndTheirValuesBeforeTheGroupAreNotTakenForIt) {
  TempDir dir;
  const std::string log = dir / "events.jsonl";
  for (const std::vector<std::string>& line :
       {std::vector<std::string>{"--data-dir", "sync", "--log-json", "lock", "status", "--lock-dir",
                                 dir.path()},
        std::vector<std::string>{"--log-file=" + log, "--data-dir=guard", "lock", "status",
                                 "--lock-dir", dir.path()},
        std::vector<std::string>{"--data-dir", "pipeline", "lock", "status", "--lock-dir",
                                 dir.path()}}) {
    ChildResult result = run_warden(line);
    EXPECT_EQ(result.exit_code, 0) << line[0] << " " << line[1] << "\n" << result.err;
    EXPECT_EQ(result.out, "no locks in " + dir.path() + "\n") << line[0] << " " << line[1];
  }
  ChildResult top = run_warden({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  for (const char* group : {"sync", "source", "sample", "lock", "guard", "block", "pipeline"}) {
    EXPECT_TRUE(contains(top.out, std::string("\n  ") + group + " ")) << group << "\n" << top.out;
  }
}

TEST(LockCliTest, StatusOfAnEmptyDirectorySaysSo) {
  TempDir dir;
  ChildResult result = run_warden({"lock", "status", "--lock-dir", dir.path()});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "no locks in " + dir.path() + "\n");
  ChildResult json = run_warden({"lock", "status", "--lock-dir", dir.path(), "--json"});
  EXPECT_EQ(nlohmann::json::parse(json.out)["locks"].size(), 0u);
}

TEST(LockCliTest, StatusShowsEveryVerdictWithTheCommandThatResolvesIt) {
  TempDir dir;
  const std::string d = dir.path();
  Child holder = hold_in_child(d, "held");
  plant(d, forged_record("dead", dead_pid(), 3));
  LockRecord reused = forged_record("reused", ::getpid(), 4);
  reused.pid_start += 99;
  plant(d, reused);
  plant(d, foreign_record("remote", 5, 10min));
  plant(d, foreign_record("expired", 6, -2h));
  spit(lock_path(d, "broken"), "{\"version\":1");

  ChildResult text = run_warden({"lock", "status", "--lock-dir", d});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  const std::string& out = text.out;
  EXPECT_TRUE(std::regex_search(out, std::regex("held +held +pid " + std::to_string(holder.pid()) +
                                                " on " + host_name() + " \\(alive\\)")))
      << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("dead +stale_dead_pid"))) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("reused +stale_pid_reused"))) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("remote +remote_unverifiable"))) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("expired +stale_expired"))) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("broken +malformed"))) << out;
  for (const char* name : {"dead", "reused", "expired", "broken"}) {
    EXPECT_TRUE(contains(out, resolve_command(d, name))) << name << "\n" << out;
  }
  EXPECT_FALSE(contains(out, resolve_command(d, "held"))) << out;

  ChildResult json = run_warden({"lock", "status", "--lock-dir", d, "--json"});
  EXPECT_EQ(json.exit_code, 0);
  nlohmann::json parsed = nlohmann::json::parse(json.out);
  EXPECT_EQ(parsed["lock_dir"], d);
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& lock : parsed["locks"]) by_name[lock["name"]] = lock;
  ASSERT_EQ(by_name.size(), 6u);
  EXPECT_EQ(by_name["held"]["verdict"], "held");
  EXPECT_EQ(by_name["held"]["holder_alive"], true);
  EXPECT_EQ(by_name["held"]["record"]["pid"], holder.pid());
  EXPECT_TRUE(by_name["held"]["resolve_command"].is_null());
  EXPECT_EQ(by_name["dead"]["verdict"], "stale_dead_pid");
  EXPECT_EQ(by_name["reused"]["verdict"], "stale_pid_reused");
  EXPECT_EQ(by_name["remote"]["verdict"], "remote_unverifiable");
  EXPECT_EQ(by_name["expired"]["verdict"], "stale_expired");
  EXPECT_EQ(by_name["broken"]["verdict"], "malformed");
  EXPECT_TRUE(by_name["broken"]["record"].is_null());
  for (const char* name : {"dead", "reused", "expired", "broken"}) {
    EXPECT_EQ(by_name[name]["resolve_command"], resolve_command(d, name)) << name;
  }
  EXPECT_LT(by_name["expired"]["expires_in_seconds"].get<double>(), 0);
}

TEST(LockCliTest, StatusOfOneDatasetShowsItsLastTokenHeldOrFree) {
  TempDir dir;
  const std::string d = dir.path();
  ChildResult none = run_warden({"lock", "status", "--lock-dir", d, "--dataset", "crsp"});
  EXPECT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(none.out,
            "lock crsp is free in " + d + "\nlast fencing token of crsp: 0 (none issued yet)\n");
  {
    FileLock lock(d, "crsp");
    for (int i = 0; i < 3; ++i) lock.release(*lock.try_acquire());
    auto held = lock.try_acquire();
    ASSERT_TRUE(held);
    plant(d, forged_record("other", dead_pid(), 9));
    ChildResult text = run_warden({"lock", "status", "--lock-dir", d, "--dataset", "crsp"});
    EXPECT_TRUE(std::regex_search(text.out, std::regex("crsp +held +pid"))) << text.out;
    EXPECT_FALSE(contains(text.out, "other")) << text.out;
    EXPECT_TRUE(contains(text.out, "last fencing token of crsp: 4\n")) << text.out;
    lock.release(*held);
  }
  ChildResult text = run_warden({"lock", "status", "--lock-dir", d, "--dataset", "crsp"});
  EXPECT_EQ(text.out, "lock crsp is free in " + d + "\nlast fencing token of crsp: 4\n");
  ChildResult json = run_warden({"lock", "status", "--lock-dir", d, "--dataset", "crsp", "--json"});
  nlohmann::json parsed = nlohmann::json::parse(json.out);
  EXPECT_EQ(parsed["last_token"], 4);
  EXPECT_EQ(parsed["locks"].size(), 0u);
  EXPECT_EQ(run_warden({"lock", "status", "--lock-dir", d, "--dataset", "../x"}).exit_code, 64);
}

TEST(LockCliTest, ForceUnlockWithoutYesRefusesWhenStdinIsNotATerminal) {
  TempDir dir;
  plant(dir.path(), forged_record("crsp", dead_pid(), 3));
  ChildResult result = run_warden(
      {"lock", "force-unlock", "--dataset", "crsp", "--lock-dir", dir.path()}, {}, 60s, "y\n");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(contains(result.out, "stdin is not a terminal; add --yes")) << result.out;
  EXPECT_TRUE(stat_path(lock_path(dir.path(), "crsp")).has_value());
}

TEST(LockCliTest, ForceUnlockShowsTheHolderAndRemovesAStaleLock) {
  TempDir dir;
  LockRecord stale = forged_record("crsp", dead_pid(), 30);
  plant(dir.path(), stale);
  ChildResult result =
      run_warden({"lock", "force-unlock", "--dataset", "crsp", "--yes", "--lock-dir", dir.path()});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_TRUE(contains(result.out, "pid " + std::to_string(stale.pid))) << result.out;
  EXPECT_TRUE(contains(result.out, stale.writer_id)) << result.out;
  EXPECT_TRUE(contains(result.out, "stale_dead_pid")) << result.out;
  EXPECT_FALSE(stat_path(lock_path(dir.path(), "crsp")).has_value());
  EXPECT_EQ(last_fencing_token(dir.path(), "crsp"), 30u);
  ChildResult again =
      run_warden({"lock", "force-unlock", "--dataset", "crsp", "--yes", "--lock-dir", dir.path()});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_TRUE(contains(again.out, "nothing to remove")) << again.out;
}

TEST(LockCliTest, ForceUnlockNeverRemovesALiveLocalHolderWithoutForce) {
  TempDir dir;
  Child holder = hold_in_child(dir.path(), "crsp");
  ChildResult refused =
      run_warden({"lock", "force-unlock", "--dataset", "crsp", "--yes", "--lock-dir", dir.path()});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_TRUE(contains(refused.out, "alive on this host")) << refused.out;
  EXPECT_EQ(inspect_file_lock(dir.path(), "crsp").verdict, LockVerdict::kHeld);
  ChildResult forced = run_warden(
      {"lock", "force-unlock", "--dataset", "crsp", "--yes", "--force", "--lock-dir", dir.path()});
  EXPECT_EQ(forced.exit_code, 0) << forced.out << forced.err;
  EXPECT_EQ(inspect_file_lock(dir.path(), "crsp").verdict, LockVerdict::kFree);
}

TEST(LockCliTest, RunHoldsTheLockWhileTheCommandRunsAndExitsWithItsCode) {
  TempDir dir;
  const std::string seen = dir / "seen.json";
  ChildResult result =
      run_warden({"lock", "run", "--dataset", "crsp", "--lock-dir", dir.path(), "--", "sh", "-c",
                  "cat \"$WARDEN_LOCK_PATH\" > " + seen +
                      "; echo \"$WARDEN_LOCK_NAME $WARDEN_LOCK_TOKEN\"; exit 7"});
  EXPECT_EQ(result.exit_code, 7) << result.err;
  EXPECT_EQ(result.out, "crsp 1\n");
  LockRecord during = LockRecord::parse(slurp(seen), seen);
  EXPECT_EQ(during.token, 1u);
  EXPECT_EQ(during.hostname, host_name());
  EXPECT_EQ(inspect_file_lock(dir.path(), "crsp").verdict, LockVerdict::kFree);
}

TEST(LockCliTest, RunExitsTwoWhenTheLockIsHeldAndTheWaitRunsOut) {
  TempDir dir;
  Child holder = hold_in_child(dir.path(), "crsp");
  const std::string marker = dir / "ran";
  ChildResult result = run_warden({"lock", "run", "--dataset", "crsp", "--wait", "0.3",
                                   "--lock-dir", dir.path(), "--", "touch", marker});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(contains(result.err, "held by pid " + std::to_string(holder.pid()))) << result.err;
  EXPECT_FALSE(stat_path(marker).has_value());
}

TEST(LockCliTest, RunWaitsForTheHolderToFinish) {
  TempDir dir;
  const std::string ready = dir / "ready";
  Child first = Child::spawn({warden_binary(), "lock", "run", "--dataset", "crsp", "--lock-dir",
                              dir.path(), "--", "sh", "-c", "touch " + ready + "; sleep 0.5"});
  ASSERT_TRUE(wait_until([&] { return stat_path(ready).has_value(); }));
  ChildResult second = run_warden({"lock", "run", "--dataset", "crsp", "--wait", "30", "--lock-dir",
                                   dir.path(), "--", "sh", "-c", "echo $WARDEN_LOCK_TOKEN"});
  EXPECT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(second.out, "2\n");
  EXPECT_EQ(first.wait().exit_code, 0);
}

TEST(LockCliTest, RunPassesSignalsToTheCommand) {
  TempDir dir;
  const std::string ready = dir / "ready";
  Child runner = Child::spawn(
      {warden_binary(), "lock", "run", "--dataset", "crsp", "--lock-dir", dir.path(), "--", "sh",
       "-c", "trap 'exit 42' TERM; sleep 0.2; touch " + ready + "; while :; do sleep 0.05; done"});
  ASSERT_TRUE(wait_until([&] { return stat_path(ready).has_value(); }));
  runner.kill(SIGTERM);
  ChildResult result = runner.wait();
  EXPECT_TRUE(result.exited);
  EXPECT_EQ(result.exit_code, 42) << result.err;
  EXPECT_EQ(inspect_file_lock(dir.path(), "crsp").verdict, LockVerdict::kFree);
}

TEST(LockCliTest, RunSigkilledTakesItsCommandDownAndTheLockIsRecovered) {
  TempDir dir;
  const std::string pid_file = dir / "command.pid";
  Child runner = Child::spawn({warden_binary(), "lock", "run", "--dataset", "crsp", "--lock-dir",
                               dir.path(), "--", "sh", "-c",
                               "echo $$ > " + pid_file + ".tmp; mv " + pid_file + ".tmp " +
                                   pid_file + "; while :; do sleep 0.05; done"});
  ASSERT_TRUE(wait_until([&] { return stat_path(pid_file).has_value(); }));
  const pid_t command = std::stoi(slurp(pid_file));
  const uint64_t token = inspect_file_lock(dir.path(), "crsp").record->token;
  runner.kill(SIGKILL);
  ChildResult result = runner.wait();
  EXPECT_EQ(result.signal, SIGKILL);
  // The command must not go on without the lock: it dies with warden.
  EXPECT_TRUE(wait_until([&] {
    auto stat = process_stat(command);
    return !stat || stat->state == 'Z';
  }));
  EXPECT_EQ(inspect_file_lock(dir.path(), "crsp").verdict, LockVerdict::kStaleDeadPid);
  ChildResult next = run_warden({"lock", "run", "--dataset", "crsp", "--lock-dir", dir.path(), "--",
                                 "sh", "-c", "echo $WARDEN_LOCK_TOKEN"});
  EXPECT_EQ(next.exit_code, 0) << next.err;
  EXPECT_EQ(next.out, std::to_string(token + 1) + "\n");
}

TEST(LockCliTest, RunStopsTheCommandWhenTheLockIsLost) {
  TempDir dir;
  const std::string ready = dir / "ready";
  Child runner =
      Child::spawn({warden_binary(), "lock", "run", "--dataset", "crsp", "--lease", "2",
                    "--lock-dir", dir.path(), "--", "sh", "-c", "touch " + ready + "; sleep 60"});
  ASSERT_TRUE(wait_until([&] { return stat_path(ready).has_value(); }));
  ForceUnlockResult forced = force_unlock(dir.path(), "crsp", true);
  ASSERT_TRUE(forced.removed) << forced.message;
  ChildResult result = runner.wait(30s);
  EXPECT_EQ(result.exit_code, 125) << result.err;
  EXPECT_TRUE(contains(result.err, "lost lock crsp")) << result.err;
}

TEST(LockCliTest, RunReportsACommandThatIsMissingOrCannotRun) {
  TempDir dir;
  ChildResult missing = run_warden({"lock", "run", "--dataset", "crsp", "--lock-dir", dir.path(),
                                    "--", "warden-no-such-command"});
  EXPECT_EQ(missing.exit_code, 127) << missing.err;
  spit(dir / "not-executable", "#!/bin/sh\n");
  ::chmod((dir / "not-executable").c_str(), 0644);
  ChildResult cannot = run_warden(
      {"lock", "run", "--dataset", "crsp", "--lock-dir", dir.path(), "--", dir / "not-executable"});
  EXPECT_EQ(cannot.exit_code, 126) << cannot.err;
  EXPECT_EQ(inspect_file_lock(dir.path(), "crsp").verdict, LockVerdict::kFree);
}

TEST(LockCliTest, RunOnAMalformedLockFailsWithoutRunningTheCommand) {
  TempDir dir;
  spit(lock_path(dir.path(), "crsp"), "garbage");
  const std::string marker = dir / "ran";
  ChildResult result = run_warden(
      {"lock", "run", "--dataset", "crsp", "--lock-dir", dir.path(), "--", "touch", marker});
  EXPECT_EQ(result.exit_code, 125);
  EXPECT_TRUE(contains(result.err, "is malformed")) << result.err;
  EXPECT_TRUE(contains(result.err, resolve_command(dir.path(), "crsp"))) << result.err;
  EXPECT_FALSE(stat_path(marker).has_value());
  EXPECT_EQ(slurp(lock_path(dir.path(), "crsp")), "garbage");
}

TEST(LockCliTest, UsageErrorsExit64) {
  TempDir dir;
  EXPECT_EQ(run_warden({"lock", "run", "--lock-dir", dir.path(), "--", "true"}).exit_code, 64);
  EXPECT_EQ(run_warden({"lock", "run", "--dataset", "../x", "--lock-dir", dir.path(), "--", "true"})
                .exit_code,
            64);
  EXPECT_EQ(run_warden({"lock", "force-unlock", "--lock-dir", dir.path()}).exit_code, 64);
}

// Seed case 11: the record is fsynced before it is published under the lock name, and the
// directory is fsynced after (so the lock, and the token in it, survive a power cut).
// Watched with strace on the real binary.
TEST(TestLocking, Case11_FsyncCalledAfterLockCreation) {
  TempDir dir;
  const std::string trace = dir / "trace.txt";
  const std::string locks = dir / "locks";
  ChildResult result = Child::spawn({"/usr/bin/strace", "-o", trace, "-e",
                                     "trace=openat,write,fsync,fdatasync,link,linkat,symlink,"
                                     "symlinkat,rename,renameat,renameat2",
                                     warden_binary(), "lock", "run", "--dataset", "crsp",
                                     "--lock-dir", locks, "--", "true"},
                                    // LeakSanitizer cannot run under ptrace (ASan builds).
                                    {{"ASAN_OPTIONS", "detect_leaks=0"}})
                           .wait();
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::vector<std::string> lines;
  std::istringstream in(slurp(trace));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  auto find = [&](const std::regex& pattern, size_t from, std::smatch* match) -> size_t {
    for (size_t i = from; i < lines.size(); ++i) {
      if (std::regex_search(lines[i], *match, pattern)) return i;
    }
    return std::string::npos;
  };
  std::smatch m;
  size_t dir_open = find(
      std::regex("openat\\(AT_FDCWD, \"" + locks + "\", [^)]*O_DIRECTORY[^)]*\\) = (\\d+)"), 0, &m);
  ASSERT_NE(dir_open, std::string::npos) << slurp(trace);
  const std::string dir_fd = m[1];
  // The record is an unnamed file (O_TMPFILE) where the file system allows, else a temp name.
  size_t temp_open = find(std::regex("openat\\(AT_FDCWD, \"(" + locks +
                                     "(/\\.crsp\\.lock\\.tmp\\.[^\"]+)?)\", O_WRONLY\\|"
                                     "(O_CREAT\\|O_EXCL|[^)]*O_TMPFILE)[^)]*\\) = (\\d+)"),
                          0, &m);
  ASSERT_NE(temp_open, std::string::npos) << slurp(trace);
  const bool unnamed = !m[2].matched;
  const std::string temp = m[1], temp_fd = m[4];
  size_t write =
      find(std::regex("write\\(" + temp_fd + ", \"\\{\\\\\"version\\\\\":1"), temp_open, &m);
  ASSERT_NE(write, std::string::npos) << slurp(trace);
  size_t file_sync = find(std::regex("^f(data)?sync\\(" + temp_fd + "\\) += 0"), write, &m);
  ASSERT_NE(file_sync, std::string::npos) << slurp(trace);
  const std::string from = unnamed ? "/proc/self/fd/" + temp_fd : temp;
  size_t link = find(
      std::regex("link(at)?\\(.*\"" + from + "\", .*\"" + locks + "/crsp\\.lock\"[^)]*\\) = 0"), 0,
      &m);
  ASSERT_NE(link, std::string::npos) << slurp(trace);
  EXPECT_GT(link, file_sync) << "the record must be durable before it is published";
  size_t dir_sync = find(std::regex("^fsync\\(" + dir_fd + "\\) += 0"), link, &m);
  EXPECT_NE(dir_sync, std::string::npos) << "the directory must be fsynced after the link\n"
                                         << slurp(trace);
  // The release moves the record onto the token file: it carries the last token issued.
  size_t release = find(std::regex("rename(at2?)?\\(.*\"" + locks + "/crsp\\.lock\", .*\"" + locks +
                                   "/crsp\\.token\"[^)]*\\) = 0"),
                        link, &m);
  EXPECT_NE(release, std::string::npos) << slurp(trace);
  EXPECT_GT(release, dir_sync);
  EXPECT_EQ(last_fencing_token(locks, "crsp"), 1u);
}

}  // namespace
}  // namespace warden
