namespace MoEMesh.Settings;

/// <summary>
/// A nested options object (or a list of them) whose settings are checked by their own rules, named
/// under this property ("MoEMesh:Dht:RpcTimeout", "MoEMesh:Experts:0:Count").
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class SectionAttribute : Attribute;
