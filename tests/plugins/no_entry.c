/* A shared object that is not a kfuse backend: no kf_backend_entry. */
int kf_not_a_backend(void) { return 42; }
