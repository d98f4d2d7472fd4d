# Tests of the CUDA backend module (backends/cuda). Included from tests/CMakeLists.txt.
#
# test_backend_ops compares every op, loss term and the optimiser update of the CUDA
# backend with the CPU backend; without a usable device it exits 77 and ctest reports it
# as skipped (not passed). test_cuda_module checks what the registry makes of the module
# on this machine (found; usable, or unavailable with the probe's reason; "auto" falls
# back to cpu; a module with a missing library is reported clearly). Both are plain C
# with exit codes: no Check fork mode, which CUDA does not survive. Both find the module
# through MSC_BACKEND_PATH. MSC_TEST_EXPECT_CUDA=1 in the environment (a GPU machine)
# turns "cuda unavailable" into a failure.

# The loss_core.h / optim_core.h functions the CUDA kernels run, tested on the host
# (those that test_loss.c and test_optim.c reach only through whole terms or updates).
# Needs no GPU and no toolkit.
msc_add_check_test(test_core_hd test_core_hd.c)

add_executable(test_backend_ops test_backend_ops.c)
target_link_libraries(test_backend_ops PRIVATE mosaic_internal)
target_compile_options(test_backend_ops PRIVATE ${MSC_TEST_WARNINGS})
target_compile_definitions(test_backend_ops PRIVATE _GNU_SOURCE)
# Only what the program uses becomes a dependency: fewer libraries to carry to a GPU
# machine that lacks this machine's packages.
target_link_options(test_backend_ops PRIVATE "LINKER:--as-needed")
add_test(NAME test_backend_ops COMMAND test_backend_ops)
set_tests_properties(test_backend_ops PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)

if(TARGET mosaic_cuda)
  add_dependencies(test_backend_ops mosaic_cuda)
  set_tests_properties(test_backend_ops PROPERTIES
    ENVIRONMENT "${MSC_TEST_ENV};MSC_BACKEND_PATH=${MSC_CUDA_MODULE_DIR}")
  # (tests/CMakeLists.txt: its CUDA half runs where a device is)
  add_dependencies(test_inplace_ops mosaic_cuda)
  set_tests_properties(test_inplace_ops PROPERTIES
    ENVIRONMENT "${MSC_TEST_ENV};MSC_BACKEND_PATH=${MSC_CUDA_MODULE_DIR}")

  add_executable(test_cuda_module test_cuda_module.c)
  target_link_libraries(test_cuda_module PRIVATE mosaic_internal)
  target_compile_options(test_cuda_module PRIVATE ${MSC_TEST_WARNINGS})
  target_compile_definitions(test_cuda_module PRIVATE _GNU_SOURCE)
  target_link_options(test_cuda_module PRIVATE "LINKER:--as-needed")
  add_dependencies(test_cuda_module mosaic_cuda)
  add_test(NAME test_cuda_module COMMAND test_cuda_module)
  set_tests_properties(test_cuda_module PROPERTIES
    ENVIRONMENT "${MSC_TEST_ENV};MSC_BACKEND_PATH=${MSC_CUDA_MODULE_DIR}" TIMEOUT 300)
else()
  # No module built: the registry reports cuda as missing, and so does this test (skip).
  set_tests_properties(test_backend_ops PROPERTIES ENVIRONMENT "${MSC_TEST_ENV}")
endif()
