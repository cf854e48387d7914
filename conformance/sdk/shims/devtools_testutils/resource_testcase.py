"""The keyword argument a resource group is passed to tests as."""

RESOURCE_GROUP_PARAM = "resource_group"
