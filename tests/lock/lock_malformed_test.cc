// Malformed lock files: each is refused with a MalformedLockFileError that names the file,
// what is wrong and the command that resolves it, and nothing is removed or changed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "lock_test_support.h"

namespace warden {
namespace {

using namespace lock_testing;
using testing::slurp;
using testing::spit;
using testing::TempDir;

struct MalformedCase {
  const char* name;
  std::function<void(const std::string& dir, const std::string& path)> plant;
  const char* problem;  // a phrase the error must contain
};

std::string valid_json() { return forged_record("crsp", 4242, 3).to_json(); }

std::string with_field_replaced(const std::string& field, const std::string& value) {
  nlohmann::json j = nlohmann::json::parse(valid_json());
  j[field] = nlohmann::json::parse(value);
  return j.dump();
}

std::string without_field(const std::string& field) {
  nlohmann::json j = nlohmann::json::parse(valid_json());
  j.erase(field);
  return j.dump();
}

const MalformedCase kCases[] = {
    {"Empty", [](auto&, auto& p) { spit(p, ""); }, "empty"},
    {"Truncated",
     [](auto&, auto& p) {
       std::string json = valid_json();
       spit(p, json.substr(0, json.size() / 2));
     },
     "not valid JSON"},
    {"NotJson", [](auto&, auto& p) { spit(p, "pid=4242 host=h1\n"); }, "not valid JSON"},
    {"JsonArray", [](auto&, auto& p) { spit(p, "[1,2,3]"); }, "not a JSON object"},
    {"ExtraField",
     [](auto&, auto& p) {
       nlohmann::json j = nlohmann::json::parse(valid_json());
       j["comment"] = "hand edited";
       spit(p, j.dump());
     },
     "unknown field \"comment\""},
    {"MissingField", [](auto&, auto& p) { spit(p, without_field("expires_at")); },
     "missing field \"expires_at\""},
    {"PidIsAString", [](auto&, auto& p) { spit(p, with_field_replaced("pid", "\"4242\"")); },
     "field \"pid\" is not a non-negative integer"},
    {"TokenIsNegative", [](auto&, auto& p) { spit(p, with_field_replaced("token", "-1")); },
     "field \"token\" is not a non-negative integer"},
    {"TokenIsAFraction", [](auto&, auto& p) { spit(p, with_field_replaced("token", "1.5")); },
     "field \"token\" is not a non-negative integer"},
    {"ExpiryIsANumber",
     [](auto&, auto& p) { spit(p, with_field_replaced("expires_at", "1700000000")); },
     "field \"expires_at\" is not a string"},
    {"ExpiryIsNotATime",
     [](auto&, auto& p) { spit(p, with_field_replaced("expires_at", "\"tomorrow\"")); },
     "field \"expires_at\" is not a UTC time"},
    {"WrongVersion", [](auto&, auto& p) { spit(p, with_field_replaced("version", "2")); },
     "version 2"},
    {"RecordOfAnotherLock",
     [](auto&, auto& p) { spit(p, forged_record("taq", 4242, 3).to_json()); },
     "names lock \"taq\""},
    {"TenMegabytesOfGarbage", [](auto&, auto& p) { spit(p, std::string(10 << 20, '\x7f')); },
     "far larger than a lock record"},
    {"Directory", [](auto&, auto& p) { make_directories(p); }, "is a directory"},
    {"Fifo", [](auto&, auto& p) { ASSERT_EQ(::mkfifo(p.c_str(), 0644), 0); }, "FIFO"},
    {"SymlinkToAValidRecord",
     [](auto& dir, auto& p) {
       spit(dir + "/elsewhere.json", valid_json());
       ASSERT_EQ(::symlink((dir + "/elsewhere.json").c_str(), p.c_str()), 0);
     },
     "symbolic link"},
    {"DanglingSymlink",
     [](auto& dir, auto& p) { ASSERT_EQ(::symlink((dir + "/nowhere").c_str(), p.c_str()), 0); },
     "symbolic link"},
};

class MalformedLockFileTest : public ::testing::TestWithParam<MalformedCase> {};

// What is at the path, to prove it was left exactly as it was.
std::string fingerprint(const std::string& path) {
  auto info = stat_path(path);
  if (!info) return "absent";
  std::string text = std::to_string(static_cast<int>(info->type)) + ":" +
                     std::to_string(info->inode) + ":" + std::to_string(info->size);
  if (info->type == FileInfo::Type::kRegular) text += ":" + std::to_string(slurp(path).size());
  return text;
}

TEST_P(MalformedLockFileTest, IsRefusedClearlyAndNothingIsLost) {
  const MalformedCase& c = GetParam();
  TempDir dir;
  const std::string path = lock_path(dir.path(), "crsp");
  c.plant(dir.path(), path);
  const std::string before = fingerprint(path);

  FileLock lock(dir.path(), "crsp");
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      if (attempt == 0) {
        lock.acquire(100ms);
      } else {
        lock.try_acquire();
      }
      FAIL() << "expected MalformedLockFileError";
    } catch (const MalformedLockFileError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(path), std::string::npos) << message;
      EXPECT_NE(message.find(c.problem), std::string::npos) << message;
      EXPECT_NE(message.find("warden lock force-unlock --dataset crsp --yes --lock-dir"),
                std::string::npos)
          << message;
    }
  }
  EXPECT_EQ(fingerprint(path), before);

  LockStatus status = inspect_file_lock(dir.path(), "crsp");
  EXPECT_EQ(status.verdict, LockVerdict::kMalformed);
  EXPECT_NE(status.reason.find(c.problem), std::string::npos) << status.reason;
  EXPECT_FALSE(status.resolve_command.empty());
  auto listed = lock_status(dir.path());
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].verdict, LockVerdict::kMalformed);

  // The resolution works: force-unlock, then the lock can be taken.
  ForceUnlockResult removed = force_unlock(dir.path(), "crsp", false);
  EXPECT_TRUE(removed.removed) << removed.message;
  EXPECT_TRUE(lock.try_acquire().has_value());
}

INSTANTIATE_TEST_SUITE_P(AllKinds, MalformedLockFileTest, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(MalformedTokenFileTest, IsRefusedWithTheCommandThatRepairsIt) {
  TempDir dir;
  spit(dir / "crsp.token", "seventeen");
  FileLock lock(dir.path(), "crsp");
  try {
    lock.try_acquire();
    FAIL() << "expected MalformedLockFileError";
  } catch (const MalformedLockFileError& e) {
    EXPECT_NE(std::string(e.what()).find(dir / "crsp.token"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(stat_path(lock_path(dir.path(), "crsp")).has_value());
}

}  // namespace
}  // namespace warden
