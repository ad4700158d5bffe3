namespace MoEMesh.Settings;

/// <summary>One setting that cannot work.</summary>
/// <param name="Setting">Its configuration path ("MoEMesh:Dht:RpcTimeout", "MoEMesh:Experts:0:Count").</param>
/// <param name="Problem">What is wrong, as "must ...; got ...".</param>
public sealed record SettingProblem(string Setting, string Problem)
{
    /// <summary>"Setting: problem."</summary>
    public override string ToString() => $"{Setting}: {Problem}.";
}
