using System.ComponentModel.DataAnnotations;

namespace MoEMesh.Settings;

/// <summary>
/// A rule for one kind of setting value (a time limit, a count, a size in bytes, ...). Each kind has one
/// rule, written once here, so every options class states and checks its limits the same way.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public abstract class SettingRuleAttribute : ValidationAttribute
{
    /// <summary>What is wrong with <paramref name="value"/>, as "must ...; got ...", or null when it is fine.</summary>
    public abstract string? Problem(object? value);

    /// <inheritdoc />
    protected sealed override ValidationResult? IsValid(object? value, ValidationContext context) =>
        Problem(value) is { } problem ? new ValidationResult(problem, context.MemberName is { } member ? [member] : []) : ValidationResult.Success;
}
