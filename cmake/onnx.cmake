# onnx.cmake - the ONNX front end's build: C bindings for ONNX's protobuf
# schema, generated with protoc-c from the onnx.proto that Debian's
# libonnx-dev installs (never committed), compiled into kfuse_lib and linked
# with protobuf-c.  Included from the top-level CMakeLists.txt once kfuse_lib
# exists.

find_program(KF_PROTOC_C protoc-c)
if(NOT KF_PROTOC_C)
  message(FATAL_ERROR "kfuse: protoc-c not found; the ONNX front end needs it "
                      "(apt-get install protobuf-c-compiler)")
endif()

find_path(KF_PROTOBUF_C_INCLUDE protobuf-c/protobuf-c.h)
find_library(KF_PROTOBUF_C_LIB protobuf-c)
if(NOT KF_PROTOBUF_C_INCLUDE OR NOT KF_PROTOBUF_C_LIB)
  message(FATAL_ERROR "kfuse: the protobuf-c library was not found; the ONNX "
                      "front end needs it (apt-get install libprotobuf-c-dev)")
endif()

set(KF_ONNX_PROTO "" CACHE FILEPATH "onnx.proto to generate the ONNX bindings from")
if(NOT KF_ONNX_PROTO)
  find_file(KF_ONNX_PROTO_FOUND onnx.proto PATHS /usr/include/onnx /usr/local/include/onnx
            NO_DEFAULT_PATH)
  if(KF_ONNX_PROTO_FOUND)
    set(KF_ONNX_PROTO ${KF_ONNX_PROTO_FOUND})
  endif()
endif()
if(NOT KF_ONNX_PROTO OR NOT EXISTS ${KF_ONNX_PROTO})
  message(FATAL_ERROR "kfuse: onnx.proto not found (looked in /usr/include/onnx); "
                      "apt-get install libonnx-dev, or pass -DKF_ONNX_PROTO=/path/to/onnx.proto")
endif()

get_filename_component(KF_ONNX_PROTO_DIR ${KF_ONNX_PROTO} DIRECTORY)
set(KF_ONNX_GEN_DIR ${CMAKE_BINARY_DIR}/onnx-gen)
file(MAKE_DIRECTORY ${KF_ONNX_GEN_DIR})
add_custom_command(
  OUTPUT ${KF_ONNX_GEN_DIR}/onnx.pb-c.c ${KF_ONNX_GEN_DIR}/onnx.pb-c.h
  COMMAND ${KF_PROTOC_C} --proto_path=${KF_ONNX_PROTO_DIR} --c_out=${KF_ONNX_GEN_DIR} ${KF_ONNX_PROTO}
  DEPENDS ${KF_ONNX_PROTO}
  COMMENT "Generating the ONNX protobuf-c bindings from ${KF_ONNX_PROTO}" VERBATIM)

# The generated file is not ours to keep warning-free.
set_source_files_properties(${KF_ONNX_GEN_DIR}/onnx.pb-c.c PROPERTIES
  GENERATED TRUE COMPILE_OPTIONS "-w")
target_sources(kfuse_lib PRIVATE ${KF_ONNX_GEN_DIR}/onnx.pb-c.c)
target_include_directories(kfuse_lib PRIVATE ${KF_ONNX_GEN_DIR} ${KF_PROTOBUF_C_INCLUDE})
target_link_libraries(kfuse_lib PUBLIC ${KF_PROTOBUF_C_LIB})

# The load-time benchmark (bench/onnx_load.c): writes a model with 10^7 f32
# parameters and times kf_load_file + kf_graph_verify.  Not a test.
add_executable(onnx_load_bench ${CMAKE_SOURCE_DIR}/bench/onnx_load.c
                               ${CMAKE_SOURCE_DIR}/tests/onnx/onnx_build.c)
target_include_directories(onnx_load_bench PRIVATE ${CMAKE_SOURCE_DIR}/src
                           ${CMAKE_SOURCE_DIR}/tests/onnx ${KF_ONNX_GEN_DIR})
target_link_libraries(onnx_load_bench PRIVATE kfuse_lib)
set_target_properties(onnx_load_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
