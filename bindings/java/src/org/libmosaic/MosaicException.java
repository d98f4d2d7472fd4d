package org.libmosaic;

/** A failed libmosaic call: the C status (a negative MSC_E_* value) and the library's message. */
public class MosaicException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final int status;

  public MosaicException(int status, String message) {
    super(message);
    this.status = status;
  }

  /** The C status, one of MosaicLibrary.MSC_E_*. */
  public int status() {
    return status;
  }

  @Override
  public String toString() {
    return MosaicLibrary.INSTANCE.msc_status_string(status) + " (" + status + "): " + getMessage();
  }
}
