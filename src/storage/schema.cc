// Dataset names, table schemas, drift detection and the schema registry.
#include <map>

#include "strict_json.h"
#include "warden/checksum.h"
#include "warden/error.h"
#include "warden/events.h"
#include "warden/posix.h"
#include "warden/storage.h"

namespace warden {

using storage_internal::StrictObject;

void validate_dataset_name(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64 && name[0] != '-';
  for (char c : name) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_' || c == '-';
    if (!allowed) ok = false;
  }
  if (!ok) {
    throw InvalidArgumentError("dataset name '" + name +
                               "': use 1-64 letters, digits, '_' or '-' (no '/', '.', or '..'), "
                               "e.g. --dataset crsp");
  }
}

std::string DataLayout::partition_relative_path(const std::string& dataset,
                                                const std::string& table, int year) {
  return "wrds/" + dataset + "/" + table + "/" + std::to_string(year) + ".parquet";
}

std::string TableSchema::hash() const {
  std::string canonical;
  for (const ColumnSchema& c : columns) canonical += c.name + " " + c.type + "\n";
  return sha256_hex(canonical).substr(0, 16);
}

nlohmann::json TableSchema::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const ColumnSchema& c : columns) list.push_back({{"name", c.name}, {"type", c.type}});
  return list;
}

TableSchema TableSchema::from_json(const nlohmann::json& json, const std::string& where) {
  if (!json.is_array()) {
    throw MalformedLockFileError("read " + where + ": 'columns' is not an array");
  }
  TableSchema schema;
  for (const nlohmann::json& item : json) {
    StrictObject column(item, where, "");
    ColumnSchema c{column.string("name"), column.string("type")};
    column.finish();
    schema.columns.push_back(std::move(c));
  }
  return schema;
}

std::string SchemaDrift::describe() const {
  std::string text;
  auto section = [&](const std::string& title, const std::vector<std::string>& items) {
    if (items.empty()) return;
    if (!text.empty()) text += "; ";
    text += title + ": ";
    for (size_t i = 0; i < items.size(); ++i) text += (i ? ", " : "") + items[i];
  };
  std::vector<std::string> a, r, t;
  for (const auto& c : added) a.push_back(c.name + " " + c.type);
  for (const auto& c : removed) r.push_back(c.name + " " + c.type);
  for (const auto& [was, now] : type_changed)
    t.push_back(was.name + " " + was.type + " -> " + now.type);
  section("added", a);
  section("removed", r);
  section("type changed", t);
  return text.empty() ? "no change" : text;
}

SchemaDrift detect_drift(const TableSchema& registered, const TableSchema& now) {
  SchemaDrift drift;
  std::map<std::string, std::string> now_types, registered_types;
  for (const auto& c : now.columns) now_types[c.name] = c.type;
  for (const auto& c : registered.columns) {
    registered_types[c.name] = c.type;
    auto it = now_types.find(c.name);
    if (it == now_types.end()) {
      drift.removed.push_back(c);
    } else if (it->second != c.type) {
      drift.type_changed.push_back({c, {c.name, it->second}});
    }
  }
  for (const auto& c : now.columns) {
    if (!registered_types.count(c.name)) drift.added.push_back(c);
  }
  return drift;
}

namespace {

std::string registry_repair(const DataLayout& layout, const std::string& dataset) {
  return "remove " + layout.schema_path(dataset) +
         " to re-register the source's schema on the next 'warden sync full --dataset " + dataset +
         "'";
}

struct RegisteredSchema {
  int64_t schema_version = 0;
  TableSchema schema;
};

std::optional<RegisteredSchema> load_registered(const DataLayout& layout,
                                                const std::string& dataset) {
  const std::string path = layout.schema_path(dataset);
  if (!stat_path(path)) return std::nullopt;
  StrictObject object(read_file(path), path, registry_repair(layout, dataset));
  if (object.integer("version") != 1) object.fail("unsupported version");
  if (object.string("dataset") != dataset) object.fail("names another dataset");
  RegisteredSchema out;
  out.schema_version = object.integer("schema_version");
  object.string("registered_at");
  out.schema = TableSchema::from_json(object.array("columns"), path);
  object.finish();
  return out;
}

}  // namespace

std::optional<TableSchema> SchemaRegistry::get_schema(const std::string& dataset) const {
  auto registered = load_registered(layout_, dataset);
  if (!registered) return std::nullopt;
  return registered->schema;
}

void SchemaRegistry::register_schema(const std::string& dataset, const TableSchema& schema) {
  validate_dataset_name(dataset);
  auto previous = load_registered(layout_, dataset);
  nlohmann::json record = {
      {"version", 1},
      {"dataset", dataset},
      {"schema_version", previous ? previous->schema_version + 1 : 1},
      {"registered_at", format_utc(std::chrono::system_clock::now())},
      {"columns", schema.to_json()},
  };
  make_directories(layout_.root() + "/schemas");
  atomic_write_file_marked(layout_.schema_path(dataset), record.dump(2) + "\n", "storage.schema");
}

SchemaDrift SchemaRegistry::validate_schema(const std::string& dataset, const TableSchema& now) {
  auto registered = get_schema(dataset);
  if (!registered) {
    register_schema(dataset, now);
    return {};
  }
  SchemaDrift drift = detect_drift(*registered, now);
  if (drift.breaking()) {
    throw SchemaError("sync " + dataset + ": the source's schema changed incompatibly (" +
                      drift.describe() +
                      "); nothing was written. If the change is intended, "
                      "remove " +
                      layout_.schema_path(dataset) +
                      " and run 'warden sync full "
                      "--dataset " +
                      dataset + "' to rebuild every partition under the new schema");
  }
  if (!drift.added.empty()) {
    emit_event(EventLevel::kWarning, "sync.schema.columns_added",
               "source added columns to " + dataset + " (" + drift.describe() +
                   "): accepted and registered; older partitions lack them",
               {{"dataset", dataset}, {"drift", drift.describe()}});
    register_schema(dataset, now);
  }
  return drift;
}

}  // namespace warden
