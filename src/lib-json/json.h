#ifndef COFFER_JSON_H
#define COFFER_JSON_H
/* json: JSON values (the only module that uses jansson).
 *
 * Contract: values are reference counted. json_new_*() return a new reference;
 * json_set()/json_append() take over (steal) the reference of the value passed
 * in; json_get()/json_at() return borrowed references valid while the container
 * lives. json_unref() accepts NULL and sets the pointer to NULL. Strings are
 * UTF-8; json_parse() rejects invalid UTF-8, a NUL character (\u0000) in any
 * string or key, and an object with a key given twice.
 * Integers are long long. Allocation failures abort. */
#include <stdbool.h>
#include <stddef.h>

struct json;

enum json_kind {
	JSON_KIND_NULL,
	JSON_KIND_BOOL,
	JSON_KIND_INT,
	JSON_KIND_REAL,
	JSON_KIND_STRING,
	JSON_KIND_ARRAY,
	JSON_KIND_OBJECT,
};

/* Parse text (not necessarily NUL-terminated). Error texts name line and column. */
int json_parse(const char *text, size_t len, struct json **json_r, const char **error_r);
/* Serialize; keys in insertion order. Free with mem_free(). */
char *json_serialize(const struct json *json, bool pretty);

struct json *json_new_object(void);
struct json *json_new_array(void);
struct json *json_new_string(const char *s); /* NULL gives JSON null */
struct json *json_new_int(long long v);
struct json *json_new_bool(bool v);
struct json *json_new_null(void);
struct json *json_ref(struct json *json);
void json_unref(struct json **json);
struct json *json_clone(const struct json *json);

enum json_kind json_kind(const struct json *json);
bool json_equals(const struct json *a, const struct json *b);

/* Values of scalars: fall back to NULL / 0 / false on other kinds. */
const char *json_string_of(const struct json *json);
long long json_int_of(const struct json *json);
bool json_bool_of(const struct json *json);

/* Objects. */
struct json *json_get(const struct json *object, const char *key);
/* The member's string value, or NULL if absent or not a string. */
const char *json_get_string(const struct json *object, const char *key);
/* 1 and *value_r if present as an integer, 0 if absent, -1 if of another kind. */
int json_get_int(const struct json *object, const char *key, long long *value_r);
bool json_get_bool(const struct json *object, const char *key, bool default_value);
void json_set(struct json *object, const char *key, struct json *value);
void json_set_string(struct json *object, const char *key, const char *value);
void json_set_int(struct json *object, const char *key, long long value);
void json_set_bool(struct json *object, const char *key, bool value);
int json_remove(struct json *object, const char *key);
/* Iteration: for (void *it = json_iter(o); it != NULL; it = json_iter_next(o, it)) */
void *json_iter(const struct json *object);
void *json_iter_next(const struct json *object, void *iter);
const char *json_iter_key(void *iter);
struct json *json_iter_value(void *iter);

/* Arrays (json_count() also counts an object's members). */
size_t json_count(const struct json *json);
struct json *json_at(const struct json *array, size_t index);
void json_append(struct json *array, struct json *value);
int json_remove_at(struct json *array, size_t index);

#endif
