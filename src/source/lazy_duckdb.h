// The DuckDB C API: every function warden calls, resolved on first use
// (include/warden/lazy_library.h) so that the executable does not load the library at start.
// Include this instead of the library's header. A function missing from this list links against the
// library directly, and the warden executable (which does not link it) fails to link: add its name
// here.
#pragma once

#include <duckdb.h>

#include "warden/lazy_library.h"

#define duckdb_append_bool(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_append_bool)(__VA_ARGS__)
#define duckdb_append_data_chunk(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_append_data_chunk)(__VA_ARGS__)
#define duckdb_append_double(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_append_double)(__VA_ARGS__)
#define duckdb_append_int32(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_append_int32)(__VA_ARGS__)
#define duckdb_append_int64(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_append_int64)(__VA_ARGS__)
#define duckdb_append_null(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_append_null)(__VA_ARGS__)
#define duckdb_append_varchar_length(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_append_varchar_length)(__VA_ARGS__)
#define duckdb_appender_close(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_appender_close)(__VA_ARGS__)
#define duckdb_appender_create(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_appender_create)(__VA_ARGS__)
#define duckdb_appender_destroy(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_appender_destroy)(__VA_ARGS__)
#define duckdb_appender_end_row(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_appender_end_row)(__VA_ARGS__)
#define duckdb_appender_error(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_appender_error)(__VA_ARGS__)
#define duckdb_appender_flush(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_appender_flush)(__VA_ARGS__)
#define duckdb_array_type_array_size(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_array_type_array_size)(__VA_ARGS__)
#define duckdb_array_type_child_type(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_array_type_child_type)(__VA_ARGS__)
#define duckdb_bind_add_result_column(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_bind_add_result_column)(__VA_ARGS__)
#define duckdb_bind_double(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_bind_double)(__VA_ARGS__)
#define duckdb_bind_get_extra_info(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_bind_get_extra_info)(__VA_ARGS__)
#define duckdb_bind_int64(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_bind_int64)(__VA_ARGS__)
#define duckdb_bind_null(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_bind_null)(__VA_ARGS__)
#define duckdb_bind_varchar_length(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_bind_varchar_length)(__VA_ARGS__)
#define duckdb_close(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_close)(__VA_ARGS__)
#define duckdb_column_count(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_column_count)(__VA_ARGS__)
#define duckdb_column_logical_type(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_column_logical_type)(__VA_ARGS__)
#define duckdb_column_name(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_column_name)(__VA_ARGS__)
#define duckdb_connect(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_connect)(__VA_ARGS__)
#define duckdb_create_config(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_create_config)(__VA_ARGS__)
#define duckdb_create_data_chunk(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_create_data_chunk)(__VA_ARGS__)
#define duckdb_create_decimal_type(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_create_decimal_type)(__VA_ARGS__)
#define duckdb_create_logical_type(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_create_logical_type)(__VA_ARGS__)
#define duckdb_create_table_function(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_create_table_function)(__VA_ARGS__)
#define duckdb_data_chunk_get_column_count(...)                                            \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_data_chunk_get_column_count) \
  (__VA_ARGS__)
#define duckdb_data_chunk_get_size(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_data_chunk_get_size)(__VA_ARGS__)
#define duckdb_data_chunk_get_vector(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_data_chunk_get_vector)(__VA_ARGS__)
#define duckdb_data_chunk_set_size(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_data_chunk_set_size)(__VA_ARGS__)
#define duckdb_decimal_scale(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_decimal_scale)(__VA_ARGS__)
#define duckdb_decimal_width(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_decimal_width)(__VA_ARGS__)
#define duckdb_destroy_config(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_destroy_config)(__VA_ARGS__)
#define duckdb_destroy_data_chunk(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_destroy_data_chunk)(__VA_ARGS__)
#define duckdb_destroy_logical_type(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_destroy_logical_type)(__VA_ARGS__)
#define duckdb_destroy_prepare(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_destroy_prepare)(__VA_ARGS__)
#define duckdb_destroy_result(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_destroy_result)(__VA_ARGS__)
#define duckdb_destroy_table_function(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_destroy_table_function)(__VA_ARGS__)
#define duckdb_disconnect(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_disconnect)(__VA_ARGS__)
#define duckdb_execute_prepared(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_execute_prepared)(__VA_ARGS__)
#define duckdb_execute_prepared_streaming(...)                                            \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_execute_prepared_streaming) \
  (__VA_ARGS__)
#define duckdb_fetch_chunk(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_fetch_chunk)(__VA_ARGS__)
#define duckdb_free(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_free)(__VA_ARGS__)
#define duckdb_from_date(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_from_date)(__VA_ARGS__)
#define duckdb_function_get_extra_info(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_function_get_extra_info)(__VA_ARGS__)
#define duckdb_function_set_error(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_function_set_error)(__VA_ARGS__)
#define duckdb_get_type_id(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_get_type_id)(__VA_ARGS__)
#define duckdb_init_set_max_threads(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_init_set_max_threads)(__VA_ARGS__)
#define duckdb_interrupt(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_interrupt)(__VA_ARGS__)
#define duckdb_list_type_child_type(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_list_type_child_type)(__VA_ARGS__)
#define duckdb_map_type_key_type(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_map_type_key_type)(__VA_ARGS__)
#define duckdb_map_type_value_type(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_map_type_value_type)(__VA_ARGS__)
#define duckdb_open_ext(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_open_ext)(__VA_ARGS__)
#define duckdb_prepare(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_prepare)(__VA_ARGS__)
#define duckdb_prepare_error(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_prepare_error)(__VA_ARGS__)
#define duckdb_query(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_query)(__VA_ARGS__)
#define duckdb_register_table_function(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_register_table_function)(__VA_ARGS__)
#define duckdb_result_error(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_result_error)(__VA_ARGS__)
#define duckdb_result_error_type(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_result_error_type)(__VA_ARGS__)
#define duckdb_row_count(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_row_count)(__VA_ARGS__)
#define duckdb_set_config(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_set_config)(__VA_ARGS__)
#define duckdb_string_t_data(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_string_t_data)(__VA_ARGS__)
#define duckdb_string_t_length(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_string_t_length)(__VA_ARGS__)
#define duckdb_struct_type_child_count(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_struct_type_child_count)(__VA_ARGS__)
#define duckdb_struct_type_child_name(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_struct_type_child_name)(__VA_ARGS__)
#define duckdb_struct_type_child_type(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_struct_type_child_type)(__VA_ARGS__)
#define duckdb_table_function_set_bind(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_table_function_set_bind)(__VA_ARGS__)
#define duckdb_table_function_set_extra_info(...)                                            \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_table_function_set_extra_info) \
  (__VA_ARGS__)
#define duckdb_table_function_set_function(...)                                            \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_table_function_set_function) \
  (__VA_ARGS__)
#define duckdb_table_function_set_init(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_table_function_set_init)(__VA_ARGS__)
#define duckdb_table_function_set_name(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_table_function_set_name)(__VA_ARGS__)
#define duckdb_validity_row_is_valid(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_validity_row_is_valid)(__VA_ARGS__)
#define duckdb_validity_set_row_invalid(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_validity_set_row_invalid)(__VA_ARGS__)
#define duckdb_value_double(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_value_double)(__VA_ARGS__)
#define duckdb_value_int64(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_value_int64)(__VA_ARGS__)
#define duckdb_value_is_null(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_value_is_null)(__VA_ARGS__)
#define duckdb_value_varchar(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_value_varchar)(__VA_ARGS__)
#define duckdb_vector_assign_string_element_len(...)                                            \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_vector_assign_string_element_len) \
  (__VA_ARGS__)
#define duckdb_vector_ensure_validity_writable(...)                                            \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_vector_ensure_validity_writable) \
  (__VA_ARGS__)
#define duckdb_vector_get_data(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_vector_get_data)(__VA_ARGS__)
#define duckdb_vector_get_validity(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_vector_get_validity)(__VA_ARGS__)
#define duckdb_vector_reference_vector(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_vector_reference_vector)(__VA_ARGS__)
#define duckdb_vector_size(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kDuckDb, duckdb_vector_size)(__VA_ARGS__)
