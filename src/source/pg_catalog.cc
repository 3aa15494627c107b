// get_table_info: what the catalog says about a table or view.
#include "warden/postgres.h"

namespace warden::pg {

namespace {

std::string quote_literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string quote_identifier(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string kind_name(const std::string& relkind) {
  if (relkind == "r" || relkind == "p") return "table";
  if (relkind == "v") return "view";
  if (relkind == "m") return "materialized view";
  if (relkind == "f") return "foreign table";
  return "relation (" + relkind + ")";
}

}  // namespace

TableInfo get_table_info(Connection& connection, const std::string& schema,
                         const std::string& table) {
  const std::string name = quote_identifier(schema) + "." + quote_identifier(table);
  // to_regclass answers NULL (no error) for a missing table; has_table_privilege keeps a
  // table the user cannot read from looking like one it can.
  auto relation = connection.query_text(
      "SELECT c.oid, c.relkind, c.reltuples::bigint, coalesce(obj_description(c.oid, "
      "'pg_class'), '') FROM pg_class c WHERE c.oid = to_regclass(" +
      quote_literal(name) + ")");
  if (relation.empty()) {
    throw PostgresError(ErrorCode::kNotFound,
                        "get table info " + schema + "." + table + ": no such table or view on " +
                            connection.redacted_target() + " (or not visible to this user)",
                        "42P01");
  }
  TableInfo info;
  info.schema = schema;
  info.table = table;
  const std::string oid = relation[0][0].value_or("0");
  info.kind = kind_name(relation[0][1].value_or(""));
  // reltuples is -1 (PostgreSQL 14+) or 0 before the first ANALYZE, and meaningless for views.
  int64_t estimate = std::stoll(relation[0][2].value_or("-1"));
  if (info.kind != "view" && estimate >= 0) info.estimated_rows = estimate;
  info.comment = relation[0][3].value_or("");
  auto columns = connection.query_text(
      "SELECT attname, format_type(atttypid, atttypmod), NOT attnotnull FROM pg_attribute "
      "WHERE attrelid = " +
      oid + " AND attnum > 0 AND NOT attisdropped ORDER BY attnum");
  for (const auto& row : columns) {
    info.columns.push_back({row[0].value_or(""), row[1].value_or(""), row[2].value_or("t") == "t"});
  }
  return info;
}

}  // namespace warden::pg
