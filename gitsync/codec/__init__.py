"""The mappings between a workflow's three shapes, one module per job:

- ``document``: the workflow file's document <-> Workflow (the model);
- ``flow_struct``: Workflow <-> the service's Flow Struct (Import, Export), with the service's
  enumeration codes; only it knows the Flow Struct's field names;
- ``marker``: the ownership marker in a managed flow's description;
- ``edit_view``: the id-based view that Load For Edit gives and Save Flow takes (SPEC §3.7),
  shared by the client's Save and the engine's, with its naming and layout rules;
- ``reader``: lenient, checked reading of one service object (SPEC §1.3).

Canonical form: ``depends_on`` lists are sorted (local tasks first, then other workflows) and
owners/visitors are sorted, because the service keeps neither order meaningful; tasks and
parameters keep their order.
"""
