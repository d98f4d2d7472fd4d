# Data-parallel training over MPI (docs/distributed.md): test_dist under mpirun with two
# ranks on this machine. Without MPI (libmosaic_mpi.so not built) the tests exit 77.
add_executable(test_dist_prog ${CMAKE_CURRENT_LIST_DIR}/test_dist.c)
target_link_libraries(test_dist_prog PRIVATE mosaic_internal)
target_compile_options(test_dist_prog PRIVATE ${MSC_TEST_WARNINGS})
target_compile_definitions(test_dist_prog PRIVATE _GNU_SOURCE)
set(_dist_env "${MSC_TEST_ENV};OMP_NUM_THREADS=1;MSC_BACKEND_PATH=${PROJECT_BINARY_DIR}"
    "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1")
# Under ASan (scripts/test-sanitize.sh) leak checking is off for these tests only: Open
# MPI keeps allocations of its run-time loaded components until exit, which LeakSanitizer
# reports from modules already unloaded ("<unknown module>"), so no suppression can name
# them. The other ASan checks stay on (the stage's options otherwise).
if(MSC_SANITIZE MATCHES "address")
  list(APPEND _dist_env
       "ASAN_OPTIONS=detect_leaks=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1")
endif()
if(MSC_MPI_BUILT)
  add_dependencies(test_dist_prog mosaic_mpi)
  add_test(NAME test_dist_equiv
           COMMAND ${MPIEXEC_EXECUTABLE} --oversubscribe -np 2 $<TARGET_FILE:test_dist_prog> equiv)
  # The gradient all-reduce overlapping the backward pass: on = off, bit for bit, and a
  # failure in the middle of one rank's backward fails the others at once.
  add_test(NAME test_dist_overlap
           COMMAND ${MPIEXEC_EXECUTABLE} --oversubscribe -np 2 $<TARGET_FILE:test_dist_prog> overlap)
  # Synchronised BatchNorm: a rank failing after the step began fails the others at once.
  add_test(NAME test_dist_syncbn_fail
           COMMAND ${MPIEXEC_EXECUTABLE} --oversubscribe -np 2 $<TARGET_FILE:test_dist_prog> syncfail)
  # msc_dist_agree: a failure outside the collectives becomes every rank's, at once (3
  # ranks: two failing ranks are counted).
  add_test(NAME test_dist_agree
           COMMAND ${MPIEXEC_EXECUTABLE} --oversubscribe -np 3 $<TARGET_FILE:test_dist_prog> agree)
  add_test(NAME test_dist_wedge COMMAND ${CMAKE_CURRENT_LIST_DIR}/failure.sh wedge
           ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:test_dist_prog>)
  add_test(NAME test_dist_kill COMMAND ${CMAKE_CURRENT_LIST_DIR}/failure.sh kill
           ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:test_dist_prog>)
  # Resuming with another number of ranks: rank 0's step and moments are broadcast.
  add_test(NAME test_dist_resume
           COMMAND sh -c "d=$(mktemp -d) && \"$0\" --oversubscribe -np 2 \"$1\" resume \"$d\"; rc=$?; rm -rf \"$d\"; exit $rc"
                   ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:test_dist_prog>)
  # The Python package's Dist and Model.fit(dist=...) (tests/dist/python_dist.py).
  if(EXISTS "${MSC_PYTHON}") # (bindings/CMakeLists.txt's interpreter)
    add_test(NAME test_dist_python
             COMMAND ${MPIEXEC_EXECUTABLE} --oversubscribe -np 2 ${MSC_PYTHON}
                     ${CMAKE_CURRENT_LIST_DIR}/python_dist.py)
  else()
    add_test(NAME test_dist_python COMMAND sh -c "echo 'skipped: no python3'; exit 77")
  endif()
  # `mpirun -np 2 mosaic train` against one process (tests/dist/tool.sh); it needs the
  # tool, which builds without MSC_BUILD_TOOLS (the sanitizer builds) leave out.
  if(TARGET mosaic_cli)
    add_test(NAME test_dist_tool COMMAND ${CMAKE_CURRENT_LIST_DIR}/tool.sh ${MPIEXEC_EXECUTABLE}
             $<TARGET_FILE:mosaic_cli> $<TARGET_FILE:test_dist_prog>)
  else()
    add_test(NAME test_dist_tool COMMAND sh -c
             "echo 'skipped: the mosaic tool is not built here (MSC_BUILD_TOOLS=OFF)'; exit 77")
  endif()
else()
  foreach(t equiv overlap syncbn_fail agree wedge kill resume tool python)
    add_test(NAME test_dist_${t} COMMAND sh -c "echo 'MPI not found at configure time: libmosaic_mpi.so not built (apt-get install libopenmpi-dev openmpi-bin)'; exit 77")
  endforeach()
endif()
foreach(t equiv overlap syncbn_fail agree wedge kill resume tool python)
  set_tests_properties(test_dist_${t} PROPERTIES ENVIRONMENT "${_dist_env}"
                       SKIP_RETURN_CODE 77 TIMEOUT 300 RESOURCE_LOCK mpi)
endforeach()
# (the package from the source tree, on the library just built)
set_tests_properties(test_dist_python PROPERTIES ENVIRONMENT
  "${_dist_env};MOSAIC_LIBRARY=$<TARGET_FILE:mosaic>;PYTHONPATH=${PROJECT_SOURCE_DIR}/bindings/python;PYTHONDONTWRITEBYTECODE=1")

# The NCCL module (backends/nccl): test_nccl alone checks the refusal without a CUDA
# device (this machine) or, with one, every collective on one rank; nccl.sh runs
# test_nccl, test_dist equiv and the wedge test over nccl on two ranks, and skips (77)
# without a CUDA device. scripts/device-check.sh runs both on a GPU machine.
if(MSC_NCCL_BUILT)
  find_package(CUDAToolkit REQUIRED) # its targets are local to backends/nccl's directory
  add_executable(test_nccl ${CMAKE_CURRENT_LIST_DIR}/test_nccl.c)
  target_link_libraries(test_nccl PRIVATE mosaic_internal CUDA::cudart)
  target_compile_options(test_nccl PRIVATE ${MSC_TEST_WARNINGS})
  target_compile_definitions(test_nccl PRIVATE _GNU_SOURCE)
  add_dependencies(test_nccl mosaic_nccl)
  add_dependencies(test_dist_prog mosaic_nccl)
  add_test(NAME test_dist_nccl_probe COMMAND test_nccl)
  add_test(NAME test_dist_nccl_equiv COMMAND ${CMAKE_CURRENT_LIST_DIR}/nccl.sh
           ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:test_dist_prog> $<TARGET_FILE:test_nccl>)
else()
  foreach(t probe equiv)
    add_test(NAME test_dist_nccl_${t} COMMAND sh -c "echo 'libmosaic_nccl.so not built (NCCL, the CUDA runtime or MPI not found at configure time, or -DMSC_NCCL=OFF)'; exit 77")
  endforeach()
endif()
foreach(t probe equiv)
  set_tests_properties(test_dist_nccl_${t} PROPERTIES ENVIRONMENT "${_dist_env}"
                       SKIP_RETURN_CODE 77 TIMEOUT 300 RESOURCE_LOCK mpi)
endforeach()
