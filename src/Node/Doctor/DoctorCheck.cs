namespace MoEMesh.Node.Doctor;

/// <summary>How a check went: fine, works but could be better, or stands in the way.</summary>
public enum Verdict
{
    /// <summary>Fine.</summary>
    Ok,

    /// <summary>The node works, but not as well as it could (say what it costs).</summary>
    Warn,

    /// <summary>Something a volunteer must fix.</summary>
    Fail,
}

/// <summary>One line of the doctor's report, and for anything not fine the exact fix.</summary>
public sealed record DoctorCheck(string Name, Verdict Verdict, string Finding, string? Fix = null)
{
    /// <summary>A check that found nothing to fix.</summary>
    public static DoctorCheck Ok(string name, string finding) => new(name, Verdict.Ok, finding);

    /// <summary>A check whose finding costs something; <paramref name="fix"/> says how to do better.</summary>
    public static DoctorCheck Warn(string name, string finding, string fix) => new(name, Verdict.Warn, finding, fix);

    /// <summary>A check that found something to fix, and exactly how.</summary>
    public static DoctorCheck Fail(string name, string finding, string fix) => new(name, Verdict.Fail, finding, fix);

    /// <summary>The lines printed: the finding, then the fix indented under it.</summary>
    public IEnumerable<string> Lines()
    {
        string mark = Verdict switch { Verdict.Ok => "ok  ", Verdict.Warn => "warn", _ => "FAIL" };
        yield return $"{mark}  {Name,-13} {Finding}";
        if (Fix is not null) yield return $"      {"",-13} fix: {Fix}";
    }
}
