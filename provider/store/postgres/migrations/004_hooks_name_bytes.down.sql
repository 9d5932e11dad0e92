DROP INDEX hooks_scope_name_bytes;
