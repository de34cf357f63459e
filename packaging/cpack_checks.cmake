# Read by cpack before it builds the package: refuse a package whose version
# has no entry in packaging/changelog.
if(NOT CPACK_COMEBACK_CHANGELOG_VERSION STREQUAL CPACK_PACKAGE_VERSION)
    message(FATAL_ERROR "packaging/changelog starts with version ${CPACK_COMEBACK_CHANGELOG_VERSION}, "
                        "the project is ${CPACK_PACKAGE_VERSION}: add a changelog entry for it")
endif()
