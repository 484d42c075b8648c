#include "json.h"
#include "mem.h"
#include "tstr.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* struct json is never defined: a struct json * is a json_t * in disguise,
 * which keeps jansson out of every other module's headers. */
#define J(x) ((json_t *)(x))
#define W(x) ((struct json *)(x))

static struct json *json_checked(json_t *j)
{
	if (j == NULL) {
		/* jansson returns NULL only when malloc failed (or invalid UTF-8,
		 * which the callers check before). */
		abort();
	}
	return W(j);
}

int json_parse(const char *text, size_t len, struct json **json_r, const char **error_r)
{
	json_error_t err;
	/* Without JSON_ALLOW_NUL a "\u0000" is refused: every caller reads
	 * strings as C strings, so a NUL would silently cut a value (an instance
	 * ID, a path) after it was checked. A key given twice is refused rather
	 * than last-wins, so two readers of one text cannot see different values. */
	json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
	if (j == NULL) {
		*error_r = tstr_printf("invalid JSON at line %d column %d: %s", err.line,
				       err.column, err.text);
		return -1;
	}
	*json_r = W(j);
	return 0;
}

char *json_serialize(const struct json *json, bool pretty)
{
	size_t flags =
		JSON_ENCODE_ANY | JSON_PRESERVE_ORDER | (pretty ? JSON_INDENT(2) : JSON_COMPACT);
	char *s = json_dumps(J(json), flags);
	if (s == NULL)
		abort();
	/* Hand out memory that mem_free() can release. */
	char *copy = mem_strdup(s);
	free(s);
	return copy;
}

struct json *json_new_object(void)
{
	return json_checked(json_object());
}

struct json *json_new_array(void)
{
	return json_checked(json_array());
}

struct json *json_new_int(long long v)
{
	return json_checked(json_integer(v));
}

struct json *json_new_bool(bool v)
{
	return json_checked(json_boolean(v));
}

struct json *json_new_null(void)
{
	return W(json_null());
}

struct json *json_new_string(const char *s)
{
	if (s == NULL)
		return json_new_null();
	json_t *j = json_string(s);
	if (j == NULL) {
		/* Invalid UTF-8: keep the data visible rather than failing. */
		j = json_string_nocheck(s);
	}
	return json_checked(j);
}

struct json *json_ref(struct json *json)
{
	return W(json_incref(J(json)));
}

void json_unref(struct json **json)
{
	if (*json != NULL)
		json_decref(J(*json));
	*json = NULL;
}

struct json *json_clone(const struct json *json)
{
	return json_checked(json_deep_copy(J(json)));
}

enum json_kind json_kind(const struct json *json)
{
	switch (json_typeof(J(json))) {
	case JSON_OBJECT:
		return JSON_KIND_OBJECT;
	case JSON_ARRAY:
		return JSON_KIND_ARRAY;
	case JSON_STRING:
		return JSON_KIND_STRING;
	case JSON_INTEGER:
		return JSON_KIND_INT;
	case JSON_REAL:
		return JSON_KIND_REAL;
	case JSON_TRUE:
	case JSON_FALSE:
		return JSON_KIND_BOOL;
	case JSON_NULL:
		break;
	}
	return JSON_KIND_NULL;
}

bool json_equals(const struct json *a, const struct json *b)
{
	return json_equal(J(a), J(b)) != 0;
}

const char *json_string_of(const struct json *json)
{
	return json != NULL && json_is_string(J(json)) ? json_string_value(J(json)) : NULL;
}

long long json_int_of(const struct json *json)
{
	return json != NULL && json_is_integer(J(json)) ? json_integer_value(J(json)) : 0;
}

bool json_bool_of(const struct json *json)
{
	return json != NULL && json_is_true(J(json));
}

struct json *json_get(const struct json *object, const char *key)
{
	if (object == NULL || !json_is_object(J(object)))
		return NULL;
	return W(json_object_get(J(object), key));
}

const char *json_get_string(const struct json *object, const char *key)
{
	return json_string_of(json_get(object, key));
}

int json_get_int(const struct json *object, const char *key, long long *value_r)
{
	struct json *v = json_get(object, key);
	if (v == NULL)
		return 0;
	if (!json_is_integer(J(v)))
		return -1;
	*value_r = json_integer_value(J(v));
	return 1;
}

bool json_get_bool(const struct json *object, const char *key, bool default_value)
{
	struct json *v = json_get(object, key);
	if (v == NULL || !json_is_boolean(J(v)))
		return default_value;
	return json_is_true(J(v));
}

void json_set(struct json *object, const char *key, struct json *value)
{
	if (json_object_set_new(J(object), key, J(value)) < 0)
		abort();
}

void json_set_string(struct json *object, const char *key, const char *value)
{
	json_set(object, key, json_new_string(value));
}

void json_set_int(struct json *object, const char *key, long long value)
{
	json_set(object, key, json_new_int(value));
}

void json_set_bool(struct json *object, const char *key, bool value)
{
	json_set(object, key, json_new_bool(value));
}

int json_remove(struct json *object, const char *key)
{
	return json_object_del(J(object), key) == 0 ? 0 : -1;
}

void *json_iter(const struct json *object)
{
	return object == NULL ? NULL : json_object_iter(J(object));
}

void *json_iter_next(const struct json *object, void *iter)
{
	return json_object_iter_next(J(object), iter);
}

const char *json_iter_key(void *iter)
{
	return json_object_iter_key(iter);
}

struct json *json_iter_value(void *iter)
{
	return W(json_object_iter_value(iter));
}

size_t json_count(const struct json *json)
{
	if (json == NULL)
		return 0;
	if (json_is_array(J(json)))
		return json_array_size(J(json));
	if (json_is_object(J(json)))
		return json_object_size(J(json));
	return 0;
}

struct json *json_at(const struct json *array, size_t index)
{
	if (array == NULL || !json_is_array(J(array)))
		return NULL;
	return W(json_array_get(J(array), index));
}

void json_append(struct json *array, struct json *value)
{
	if (json_array_append_new(J(array), J(value)) < 0)
		abort();
}

int json_remove_at(struct json *array, size_t index)
{
	return json_array_remove(J(array), index) == 0 ? 0 : -1;
}
