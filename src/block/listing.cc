// list_blocks(): every block on this host, who uses it, and which ones leaked.
#include <algorithm>

#include "layout.h"
#include "warden/posix.h"

namespace warden::block {

std::vector<BlockListing> list_blocks() {
  std::vector<BlockListing> listings;
  const std::string prefix = "warden-block.";
  for (const std::string& segment_name : list_shared_memory(prefix)) {
    BlockListing listing;
    listing.name = segment_name.substr(1 + prefix.size());
    std::string path = shared_memory_path(segment_name);
    if (auto info = stat_path(path)) listing.bytes = info->size;
    try {
      auto segment = Segment::open_unchecked(listing.name);
      listing.problem = segment->header_problem();
      // Our own mapping is not a user.
      for (pid_t pid : processes_mapping_file(path)) {
        if (pid != self_identity().pid) listing.users.push_back(pid);
      }
      if (listing.problem.empty()) {
        const Header& h = segment->header();
        listing.slot_count = h.slot_count;
        listing.slot_size = h.slot_size;
        listing.created_at = format_utc(std::chrono::system_clock::time_point(
            std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::nanoseconds(h.created_at_ns))));
        for (const ParticipantInfo& p : participant_infos(*segment)) {
          if (!p.alive) listing.dead_users.push_back(p.pid);
        }
        for (uint32_t i = 0; i < h.slot_count; ++i) {
          uint64_t owner = segment->slot(i).write_lock.load();
          if (owner != 0 && !owner_status(owner).alive) {
            listing.dead_users.push_back(owner_pid(owner));
          }
        }
        std::sort(listing.dead_users.begin(), listing.dead_users.end());
        listing.dead_users.erase(std::unique(listing.dead_users.begin(), listing.dead_users.end()),
                                 listing.dead_users.end());
      }
    } catch (const Error& e) {
      listing.problem = e.what();
    }
    listing.leaked = listing.users.empty() && !listing.dead_users.empty();
    listings.push_back(std::move(listing));
  }
  std::sort(listings.begin(), listings.end(),
            [](const BlockListing& a, const BlockListing& b) { return a.name < b.name; });
  return listings;
}

}  // namespace warden::block
