// cu_main.c: the main of every CUnit suite binary. Each tests/test_*.c
// defines register_tests(); this runs them and prints one RESULT line that
// tests/run.sh adds up.
#include <CUnit/Basic.h>
#include <stdio.h>

void register_tests(void);

int main(void) {
  if (CU_initialize_registry() != CUE_SUCCESS)
    return 2;
  register_tests();
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  unsigned run = CU_get_number_of_tests_run();
  unsigned failed = CU_get_number_of_tests_failed();
  unsigned asserts_failed = CU_get_number_of_failures();
  printf("RESULT %u %u\n", run, failed);
  CU_cleanup_registry();
  return failed || asserts_failed ? 1 : 0;
}
